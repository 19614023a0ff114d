"""What `decide` works out once per step graph instead of once per decision.

A `Plan` holds the send-name table, the lifetime, the exit rule and branch
conditions compiled into closures (`predicates`), and the parsed send window
and caps. Parts that could fail on a malformed graph are built on first use,
so they fail where a decision would have failed without the plan: the window
at the first send, a branch's condition at that branch.

Plans are kept per graph object. A `StepGraph` is frozen, and its nodes and
settings must not be edited once it is in use (the store parses a version
once and never edits it); the cache holds the graph itself, so its `id`
cannot be taken by another graph while its plan is kept. `id` rather than the
content hash: a graph built in a test has no hash, and `dataclasses.replace`
copies the hash along with a changed setting.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from dsl.graph import Node, StepGraph
from nurture.engine.calendar import Window
from nurture.engine.caps import Cap
from nurture.engine.predicates import Predicate, compile_condition

if TYPE_CHECKING:
    from nurture.engine.draft import Draft, Outcome

    Handler = Callable[[Draft, Node], Outcome]

PLANS_KEPT = 512
"""Graphs whose plans are kept; past that, the oldest plan is dropped (and rebuilt if used)."""


class Plan:
    """One graph's precomputed parts."""

    def __init__(self, graph: StepGraph) -> None:
        self.graph = graph
        names: dict[str, tuple[str, ...]] = {}
        for n in graph.nodes.values():
            if n.kind == "send" and n.params.get("name"):
                name = str(n.params["name"])
                names[name] = (*names.get(name, ()), n.id)
        self.names = {name: nids[0] for name, nids in names.items() if len(nids) == 1}
        """The send step of each `send ... as NAME` that one step sends."""
        self.shared_names = {name: nids for name, nids in names.items() if len(nids) > 1}
        """The send steps of a name that exclusive branches share (the checker allows
        that: "on different branches they are one message"): whichever was sent."""
        self.lifetime = timedelta(seconds=graph.end_after) if graph.end_after else None
        self._branches: dict[str, tuple[Predicate, timedelta | None]] = {}
        self.targets = {id(n): first_targets(n) for n in graph.nodes.values()}
        """Each node's first target per edge kind, by `id` of the graph's own node object."""

    @functools.cached_property
    def steps(self) -> dict[str, tuple[Node, Handler]]:
        """Each step by id, with the function that runs its kind (unknown kinds left out)."""
        from nurture.engine.steps import HANDLERS  # `steps` imports `draft`, which imports us

        return {
            n.id: (n, HANDLERS[n.kind]) for n in self.graph.nodes.values() if n.kind in HANDLERS
        }

    @functools.cached_property
    def exit(self) -> Predicate | None:
        """The compiled `exit when` rule, if the campaign has one."""
        rule = self.graph.exit_when
        return None if rule is None else compile_condition(rule)

    @functools.cached_property
    def exit_reads(self) -> int:
        """What the exit rule looks at that a step may change (see `predicates.TAGS`)."""
        return 0 if self.exit is None else self.exit.reads

    @functools.cached_property
    def window(self) -> Window | None:
        return Window.from_json(self.graph.window) if self.graph.window else None

    @functools.cached_property
    def caps(self) -> tuple[Cap, ...]:
        return tuple(Cap.from_json(c) for c in self.graph.caps)

    def branch(self, node: Node) -> tuple[Predicate, timedelta | None]:
        """A branch step's compiled condition and its `within` span (None: no `within`)."""
        found = self._branches.get(node.id)
        if found is None:
            within = node.params.get("within")
            span = None if within is None else timedelta(seconds=float(within))
            found = self._branches[node.id] = (compile_condition(node.params.get("cond")), span)
        return found


def first_targets(node: Node) -> dict[str, str]:
    """Where the first edge of each kind leads: what `Draft.follow` looks up."""
    found: dict[str, str] = {}
    for edge in node.edges:
        found.setdefault(edge.kind, edge.target)
    return found


_plans: dict[int, Plan] = {}
_lock = threading.Lock()


def plan_for(graph: StepGraph) -> Plan:
    """The graph's plan, built on its first decision and kept while it is among the recent ones."""
    plan = _plans.get(id(graph))
    if plan is not None and plan.graph is graph:
        return plan
    plan = Plan(graph)
    with _lock:
        while len(_plans) >= PLANS_KEPT:
            del _plans[next(iter(_plans))]
        _plans[id(graph)] = plan
    return plan
