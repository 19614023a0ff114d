"""`dsl.diff`: steps matched by what they are, not by their position-numbered ids."""

from __future__ import annotations

import dsl
from dsl.diff import ADDED, CHANGED, REMOVED, diff_graphs, diff_programs
from dsl.graph import StepGraph

BASE = """\
campaign "Welcome"
  enroll when lead created
  send email "welcome/hello" subject "Hi"
  wait 3 days
  send email "welcome/tips" subject "Tips"
  tag "welcomed"
"""


def graph(text: str) -> StepGraph:
    return dsl.build({"w.nurture": text}).campaigns["Welcome"]


def test_a_step_inserted_at_the_top_is_one_addition_and_the_rest_move_down() -> None:
    old = graph(BASE)
    new = graph(
        BASE.replace('  send email "welcome/hello"', '  tag "new"\n  send email "welcome/hello"', 1)
    )

    diff = diff_graphs("Welcome", old, new)

    assert diff.status == "changed" and diff.same == 4
    [change] = diff.changes
    assert (change.change, change.old, change.new and change.new.id) == (ADDED, None, "n1")
    assert dict(diff.step_map) == {"end": "end", "n1": "n2", "n2": "n3", "n3": "n4", "n4": "n5"}


def test_a_changed_wait_and_a_removed_send_are_told_apart() -> None:
    old = graph(BASE)
    new = graph(
        BASE.replace("wait 3 days", "wait 5 days").replace(
            '  send email "welcome/tips" subject "Tips"\n', ""
        )
    )

    diff = diff_graphs("Welcome", old, new)

    kinds = [(c.change, c.old and c.old.id, c.new and c.new.id) for c in diff.changes]
    assert kinds == [(CHANGED, "n2", "n2"), (REMOVED, "n3", None)]
    assert dict(diff.step_map) == {"end": "end", "n1": "n1", "n2": "n2", "n4": "n3"}


def test_settings_and_whole_campaigns() -> None:
    old = graph(BASE)
    new = graph(BASE.replace("enroll when lead created", 'enroll when tagged "x"'))
    assert diff_graphs("Welcome", old, new).settings == ("enroll when",)
    assert diff_graphs("Welcome", old, old).status == "same"

    [added, removed] = diff_programs({"Gone": old}, {"Welcome": new})
    assert (added.name, added.status, len(added.changes)) == ("Welcome", "added", 4)
    assert (removed.name, removed.status) == ("Gone", "removed")
    assert {c.change for c in removed.changes} == {REMOVED}
