"""Reading the steps a `decide` call ran through its step observer (see `nurture.simulate.trace`).

These pin how the core reports its walk over a graph: if it ever told the
observer about steps differently, the simulator's `entered` counts and step
totals would drift, and these fail first.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dsl.graph import StepGraph
from nurture.engine import EnrollmentState, LeadView, decide
from nurture.simulate.trace import StepTrace
from tests.simulate.helpers import program

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)
LEAD = LeadView("L1", {"time_zone": "UTC"})


def ran(graph: StepGraph, state: EnrollmentState, lead: LeadView, now: datetime) -> list[str]:
    trace = StepTrace()
    decide(state, lead, [], graph, now, observer=trace)
    return trace.visits


def graph_of(text: str) -> StepGraph:
    (graph,) = program(text).campaigns.values()
    return graph


def test_tracing_a_decision_changes_nothing() -> None:
    graph = graph_of('campaign "A"\n  send email "a/one"\n')
    start = EnrollmentState.start(1, graph, MONDAY)

    trace = StepTrace()
    traced = decide(start, LEAD, [], graph, MONDAY, observer=trace)

    assert traced == decide(start, LEAD, [], graph, MONDAY)
    assert trace.visits == ["n1", "end"]


def test_steps_up_to_a_wait_then_the_rest() -> None:
    graph = graph_of('campaign "A"\n  send email "a/one"\n  wait 1 day\n  send email "a/two"\n')
    start = EnrollmentState.start(1, graph, MONDAY)

    trace = StepTrace()
    first = decide(start, LEAD, [], graph, MONDAY, observer=trace)
    assert trace.visits == ["n1", "n2"]

    trace = StepTrace()
    later = MONDAY + timedelta(days=1)
    decide(first.state, LEAD, [], graph, later, observer=trace)
    assert trace.visits == ["n3", "end"]


def test_an_exit_step_counts_once() -> None:
    graph = graph_of('campaign "A"\n  send email "a/one"\n  exit\n')

    assert ran(graph, EnrollmentState.start(1, graph, MONDAY), LEAD, MONDAY) == ["n1", "n2"]


def test_an_exit_rule_before_the_first_step_runs_nothing() -> None:
    graph = graph_of('campaign "A"\n  exit when tagged "customer"\n  send email "a/one"\n')
    customer = LeadView("L1", {}, frozenset({"customer"}))

    assert ran(graph, EnrollmentState.start(1, graph, MONDAY), customer, MONDAY) == []


def test_a_parked_branch_is_looked_up_again_when_it_resumes() -> None:
    text = 'campaign "A"\n  send email "a/one"\n  if opened within 3 days:\n    tag "x"\n'
    graph = graph_of(text)
    trace = StepTrace()
    first = decide(EnrollmentState.start(1, graph, MONDAY), LEAD, [], graph, MONDAY, observer=trace)
    assert trace.visits == ["n1", "n2"]
    assert first.state.cursor == "n2" and first.state.waiting_for is not None

    # woken early (say by an unrelated event): the branch runs again and parks again
    assert ran(graph, first.state, LEAD, MONDAY + timedelta(hours=1)) == ["n2"]
