"""Which steps one `decide` call ran, told by the core's step observer.

The core returns actions and the next state, not the steps it walked through;
a `StepTrace` passed as `decide(..., observer=...)` notes the id of each step
as it starts, so `visits` is one entry per step executed, in order.
`tests/simulate/test_trace.py` pins this against hand-counted paths.
"""

from __future__ import annotations

from dsl.graph import Node
from nurture.engine import StepObserver


class StepTrace(StepObserver):
    """Appends the id of every step `decide` runs to `visits`.

    The simulator reuses one trace for every decision (`clear` between them),
    since it is told about every step the whole run takes.
    """

    def __init__(self) -> None:
        self.visits: list[str] = []

    def before_step(self, node: Node) -> None:
        self.visits.append(node.id)

    def clear(self) -> None:
        """Forget the visits so far, for the next decision."""
        self.visits.clear()
