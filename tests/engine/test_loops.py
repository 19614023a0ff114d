"""Split arms, loop rendering and iteration keys."""

from __future__ import annotations

from collections import Counter

import pytest

from nurture.engine import EnrollmentState, LeadView, Tag, decide
from nurture.engine.loops import bucket, pick_arm, render_loop
from tests.engine.conftest import MONDAY
from tests.engine.sim import campaign

SPLIT = """
campaign "AB"
  enroll when lead created
  split:
    20% "a":
      tag "a"
    30% "b":
      tag "b"
    50% "c":
      tag "c"
"""


def test_split_is_deterministic_and_follows_the_weights_over_ten_thousand_leads() -> None:
    # Given a 20/30/50 split
    graph = campaign(SPLIT)

    # When 10,000 leads run through it, twice
    def arm(lead_id: int) -> str:
        state = EnrollmentState.start(lead_id, graph, MONDAY)
        (tag,) = decide(state, LeadView(lead_id), [], graph, MONDAY).actions
        assert isinstance(tag, Tag)
        return tag.tag

    first = [arm(i) for i in range(10_000)]
    second = [arm(i) for i in range(10_000)]

    # Then every lead lands in the same arm both times, and the shares are within 1.5 points
    assert first == second
    shares = Counter(first)
    for name, percent in {"a": 20, "b": 30, "c": 50}.items():
        assert abs(shares[name] / 100 - percent) < 1.5, shares


def test_the_split_hash_is_stable_across_processes() -> None:
    # sha256 of "42\x1fAB\x1fn1", not Python's salted hash(): this value never changes
    assert bucket(42, "AB", "n1") == pytest.approx(37.0645632450396)
    assert bucket(42, "AB", "n1") == bucket("42", "AB", "n1")
    assert 0 <= bucket(42, "AB", "n1") < 100
    assert bucket(42, "AB", "n1") != bucket(42, "AB", "n2")


def test_weights_that_miss_one_hundred_are_scaled() -> None:
    from dsl.graph import Edge

    edges = (Edge("branch", "x", "x", 1.0), Edge("branch", "y", "y", 3.0))
    picks = Counter(pick_arm(edges, i, "C", "n1").target for i in range(4000))
    assert 800 < picks["x"] < 1200


def test_render_loop_fills_only_loop_attributes() -> None:
    text = "drip/tip-{{ loop.index }} of {{loop.length}} ({{ lead.first_name }})"
    assert render_loop(text, 3, 6) == "drip/tip-3 of 6 ({{ lead.first_name }})"
    assert render_loop("{{ loop.index0 }}{{ loop.first }}{{ loop.last }}", 1, 1) == "0TrueTrue"
    assert render_loop("x-{{ loop.index }}", None, 0) == "x-{{ loop.index }}"
