"""Reading the steps a `decide` call ran from its node look-ups (see `nurture.simulate.trace`).

These pin how the core walks a graph: if it ever looks nodes up differently,
the simulator's `entered` counts and step totals would drift, and these fail first.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dsl.graph import StepGraph
from nurture.engine import EnrollmentState, LeadView, decide
from nurture.simulate.trace import TracedNodes, steps_run, traced
from tests.simulate.helpers import program

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)
LEAD = LeadView("L1", {"time_zone": "UTC"})


def ran(graph: StepGraph, state: EnrollmentState, lead: LeadView, now: datetime) -> list[str]:
    copy, nodes = traced(graph)
    nodes.visits = []
    decision = decide(state, lead, [], copy, now)
    return steps_run(nodes.visits, decision.actions)


def graph_of(text: str) -> StepGraph:
    (graph,) = program(text).campaigns.values()
    return graph


def test_a_traced_graph_is_the_same_campaign() -> None:
    graph = graph_of('campaign "A"\n  send email "a/one"\n')

    copy, nodes = traced(graph)

    assert isinstance(copy.nodes, TracedNodes) and copy.nodes is nodes
    assert copy == graph
    assert dict(nodes) == graph.nodes


def test_steps_up_to_a_wait_then_the_rest() -> None:
    graph = graph_of('campaign "A"\n  send email "a/one"\n  wait 1 day\n  send email "a/two"\n')
    start = EnrollmentState.start(1, graph, MONDAY)

    copy, nodes = traced(graph)
    first = decide(start, LEAD, [], copy, MONDAY)
    assert steps_run(nodes.visits, first.actions) == ["n1", "n2"]

    nodes.visits = []
    later = MONDAY + timedelta(days=1)
    second = decide(first.state, LEAD, [], copy, later)
    assert steps_run(nodes.visits, second.actions) == ["n3", "end"]


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
    copy, nodes = traced(graph)
    first = decide(EnrollmentState.start(1, graph, MONDAY), LEAD, [], copy, MONDAY)
    assert steps_run(nodes.visits, first.actions) == ["n1", "n2"]
    assert first.state.cursor == "n2" and first.state.waiting_for is not None

    # woken early (say by an unrelated event): the branch runs again and parks again
    assert ran(graph, first.state, LEAD, MONDAY + timedelta(hours=1)) == ["n2"]
