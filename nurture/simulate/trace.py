"""Which steps one `decide` call ran, read from the outside.

The core returns actions and the next state, not the steps it walked through,
and it has no observer hook yet. It does look every step up by id with
`graph.nodes.get(cursor)` before running it, and once more when it exits, so
a graph whose node table notes those look-ups tells the simulator the path:
drop the exit's look-up and what remains is one entry per step executed.
`tests/simulate/test_trace.py` pins this against hand-counted paths, so a
change in the core shows up there first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from dsl.graph import Node, StepGraph
from nurture.engine import Action, Exit


class TracedNodes(dict[str, Node]):
    """A graph's node table that appends every id looked up with `get` to `visits`."""

    __slots__ = ("visits",)

    def __init__(self, nodes: Mapping[str, Node]) -> None:
        super().__init__(nodes)
        self.visits: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.visits.append(key)
        return dict.get(self, key, default)


def traced(graph: StepGraph) -> tuple[StepGraph, TracedNodes]:
    """The same campaign over a node table that records look-ups."""
    nodes = TracedNodes(graph.nodes)
    return replace(graph, nodes=nodes), nodes


def steps_run(visits: list[str], actions: Sequence[Action]) -> list[str]:
    """The steps a decision executed, in order, from its look-ups (edits `visits`)."""
    if visits and actions and type(actions[-1]) is Exit:
        visits.pop()  # `Draft.exit` looks the cursor up again to record a suppressed send
    return visits
