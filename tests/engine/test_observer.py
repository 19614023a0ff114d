"""The step observer: told before and after each step `decide` runs, silent otherwise."""

from __future__ import annotations

from dsl.graph import Node
from nurture.engine import (
    Decision,
    EnrollmentState,
    LeadView,
    NullObserver,
    StepObserver,
    decide,
)
from tests.engine.conftest import MONDAY
from tests.engine.sim import campaign

FLOW = """
campaign "Flow"
  enroll when lead created
  exit when tagged "customer"
  tag "seen"
  send email "a"
  wait 1 day
  send email "b"
"""


class Recorder(StepObserver):
    """Notes every hook call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, object]] = []

    def before_step(self, node: Node) -> None:
        self.calls.append(("before", node.id, None))

    def after_step(self, node: Node, outcome: str | Decision) -> None:
        self.calls.append(("after", node.id, outcome))


def test_each_step_is_observed_before_and_after_it_runs() -> None:
    # Given a flow of a tag, a send and a wait
    graph = campaign(FLOW)
    recorder = Recorder()

    # When a new enrollment decides
    decision = decide(
        EnrollmentState.start(1, graph, MONDAY), LeadView("L"), [], graph, MONDAY, observer=recorder
    )

    # Then each step is announced, then reported with where it leads; the wait ends the call
    assert recorder.calls == [
        ("before", "n1", None),
        ("after", "n1", "n2"),
        ("before", "n2", None),
        ("after", "n2", "n3"),
        ("before", "n3", None),
        ("after", "n3", decision),
    ]


def test_nothing_is_observed_when_the_enrollment_leaves_before_its_first_step() -> None:
    graph = campaign(FLOW)
    recorder = Recorder()
    customer = LeadView("L", tags=frozenset({"customer"}))

    decision = decide(
        EnrollmentState.start(1, graph, MONDAY), customer, [], graph, MONDAY, observer=recorder
    )

    assert decision.state.exit_reason == "exit condition"
    assert recorder.calls == []


def test_the_default_hooks_do_nothing() -> None:
    # Given an observer that overrides one hook, and one that overrides none
    class Counter(StepObserver):
        def __init__(self) -> None:
            self.steps = 0

        def before_step(self, node: Node) -> None:
            self.steps += 1

    graph = campaign(FLOW)
    start = EnrollmentState.start(1, graph, MONDAY)
    counter = Counter()

    # When each decides the same enrollment
    plain = decide(start, LeadView("L"), [], graph, MONDAY)
    counted = decide(start, LeadView("L"), [], graph, MONDAY, observer=counter)
    null = decide(start, LeadView("L"), [], graph, MONDAY, observer=NullObserver())

    # Then the decisions are the same as without an observer
    assert plain == counted == null
    assert counter.steps == 3
