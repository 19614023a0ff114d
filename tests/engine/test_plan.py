"""What `decide` works out once per graph: kept per graph object, built where it may fail."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import timedelta

import pytest

from nurture.engine import Deferred, EnrollmentState, Exit, LeadView, Send, decide
from nurture.engine.plan import plan_for
from tests.engine.conftest import MONDAY
from tests.engine.sim import campaign

FLOW = """
campaign "Flow"
  enroll when lead created
  exit when tagged "customer"
  window weekdays 09:00-18:00
  tag "seen"
  wait 1 day
  send email "a"
"""


def test_a_graph_keeps_its_plan_and_a_changed_copy_gets_its_own() -> None:
    # Given a campaign and a copy with another exit rule (and the same content hash field)
    graph = campaign(FLOW)
    other = replace(graph, exit_when={"op": "tagged", "tag": "seen"})
    start = EnrollmentState.start(1, graph, MONDAY)

    # When both decide for the same lead
    first = decide(start, LeadView("L"), [], graph, MONDAY)
    second = decide(start, LeadView("L"), [], other, MONDAY)

    # Then each followed its own exit rule, and each graph kept one plan
    assert first.state.state == "waiting"
    assert second.actions[-1] == Exit("exit condition")
    assert plan_for(graph) is plan_for(graph) and plan_for(other) is not plan_for(graph)
    assert other.hash == graph.hash


def test_a_broken_window_fails_only_at_a_send_as_before() -> None:
    # Given a stored graph whose window cannot be read
    graph = replace(campaign(FLOW), window={"days": ["someday"], "start": "09:00"})
    start = EnrollmentState.start(1, graph, MONDAY)

    # When it runs the steps before the send, then the send
    waiting = decide(start, LeadView("L"), [], graph, MONDAY)
    assert waiting.state.cursor == "n3"

    # Then only the send fails, every time
    for _ in range(2):
        with pytest.raises(ValueError):
            decide(waiting.state, LeadView("L"), [], graph, waiting.state.next_run_at or MONDAY)


def test_a_send_counts_against_the_cap_of_the_next_send_in_the_same_decision() -> None:
    graph = campaign('campaign "Two"\n  cap 1 per day\n  send email "a"\n  send email "b"\n')

    decision = decide(EnrollmentState.start(1, graph, MONDAY), LeadView("L"), [], graph, MONDAY)

    sent, deferred = decision.actions
    assert isinstance(sent, Send) and deferred == Deferred("n2", MONDAY + timedelta(days=1), "cap")


def test_a_decision_sets_every_field_of_the_enrollment() -> None:
    # `Draft.finish` builds the next state field by field (faster than `replace`):
    # a new field must be added there too.
    assert [f.name for f in fields(EnrollmentState)] == [
        "id",
        "cursor",
        "entered_at",
        "state",
        "next_run_at",
        "waiting_for",
        "loops",
        "sent",
        "last_sent",
        "exit_reason",
        "ended_at",
    ]
