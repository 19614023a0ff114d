"""Which way enrollments go out of a step with several ways out, counted as decisions are stored.

The core returns actions and the next state, not the steps it walked
through; a `Ways` observer notes them as `decide` runs (it is the simulator's
`StepTrace`), and the pairs that leave a fork (a step with more than one
edge: a branch, a split, a repeat, a wait with a timeout) become the plan's
`took`. The recorder adds a batch's pairs up per (version, from, to) and
writes them in one upsert (``count = count + excluded.count``), atomic on
PostgreSQL and SQLite whatever other workers add at the same moment; rows go
in key order so two batches never wait on each other's rows crosswise.

A decision is counted when it is stored (the enrollment moves on); one kept
back for a retry is decided again later and counted then, once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Final

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from dsl.graph import StepGraph
from nurture.models import StepEdge
from nurture.runtime.database import is_postgres, table_of
from nurture.simulate.trace import StepTrace

EDGES: Final = table_of(StepEdge)
Way = tuple[str, str]


class Ways(StepTrace):
    """The simulator's trace of the steps one `decide` call runs (`clear` before the next
    call), read as the ways it took out of forks."""

    def taken(self, graph: StepGraph) -> tuple[Way, ...]:
        """The (from, to) pairs of the last call that leave a step with several ways out."""
        visits, nodes = self.visits, graph.nodes
        found: list[Way] = []
        for i in range(len(visits) - 1):
            node = nodes.get(visits[i])
            if node is not None and len(node.edges) > 1:
                found.append((visits[i], visits[i + 1]))
        return tuple(found)


def add_ways(session: Session, taken: Iterable[tuple[int, Sequence[Way]]]) -> None:
    """Add each (version id, ways) to ``step_edges`` in one upsert, in the caller's transaction."""
    counts: Counter[tuple[int, str, str]] = Counter()
    for version_id, ways in taken:
        for source, target in ways:
            counts[version_id, source, target] += 1
    if not counts:
        return
    rows = [
        {"campaign_version_id": v, "from_step": a, "to_step": b, "count": n}
        for (v, a, b), n in sorted(counts.items())
    ]
    make = pg_insert if is_postgres(session) else sqlite_insert
    insert = make(EDGES)
    upsert = insert.on_conflict_do_update(
        index_elements=[EDGES.c.campaign_version_id, EDGES.c.from_step, EDGES.c.to_step],
        set_={"count": EDGES.c.count + insert.excluded.count},
    )
    session.execute(upsert, rows)
