"""Hooks around each step `decide` runs, for metrics, audit and traces; the defaults do nothing.

Pass an observer as `decide(..., observer=...)`. `before_step` is called once
the exit checks passed and the step is about to run, `after_step` with what it
returned: the id of the step to run next, or the `Decision` that ends the call.
Neither is called when the call ends before any step (the lead is suppressed,
the exit rule holds, the enrollment is not due), nor for a cursor that names
no step or a step of an unknown kind (the call exits with `missing step`).
An observer sees the graph's own nodes and must not change anything:
`decide` stays a pure function of its arguments. A hook that raises ends the
call with that exception.
"""

from __future__ import annotations

from typing import Protocol

from dsl.graph import Node
from nurture.engine.draft import Outcome


class StepObserver(Protocol):
    """Told about each step one `decide` call runs; subclass and override what you need."""

    def before_step(self, node: Node) -> None:
        """`node` is about to run."""
        return None

    def after_step(self, node: Node, outcome: Outcome) -> None:
        """`node` ran and returned `outcome`: the next step's id, or the call's `Decision`."""
        return None


class NullObserver(StepObserver):
    """Observes nothing; `decide` without an observer behaves as with this one."""
