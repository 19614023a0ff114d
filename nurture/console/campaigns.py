"""The campaigns pages' data: each deployed campaign with its leads, and one campaign's
flow drawn by Graphviz as ``nurture graph --format svg --counts live`` draws it.

Pictures are served as images (``image/svg+xml`` in an ``<img>``), where no
script in them could run. A picture carries production's numbers, which
change as leads move: a version's numbers are read at most once per
`LIVE_SECONDS` (a page and its image, or a reload, reuse them), and a drawing
is kept by its version and numbers, so Graphviz runs again only when a number
changed.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dsl.draw import Numbers, to_dot
from dsl.graph import StepGraph
from nurture.live_counts import version_numbers
from nurture.models import Campaign, CampaignVersion, Enrollment

DOT_SECONDS: Final = 30.0
LIVE_SECONDS: Final = 10.0
"""How long a version's live numbers are reused before they are read again."""
DRAWINGS: Final = 256
"""Drawings kept (the least recently used go first)."""


@dataclass(frozen=True, slots=True)
class Listed:
    id: int
    name: str
    version: int | None
    active: int
    """Enrollments active or waiting, across versions."""
    total: int


def listed(session: Session) -> list[Listed]:
    """Every campaign with its current version and enrollments (one query)."""
    live = Enrollment.state.in_(("active", "waiting"))
    rows = session.execute(
        select(
            Campaign.id,
            Campaign.name,
            Campaign.current_version,
            func.count(Enrollment.id).filter(live),
            func.count(Enrollment.id),
        )
        .outerjoin(CampaignVersion, CampaignVersion.campaign_id == Campaign.id)
        .outerjoin(Enrollment, Enrollment.campaign_version_id == CampaignVersion.id)
        .group_by(Campaign.id, Campaign.name, Campaign.current_version)
        .order_by(Campaign.name)
    )
    return [Listed(int(i), str(n), v, int(a), int(t)) for i, n, v, a, t in rows]


def key_of(numbers: Numbers) -> Hashable:
    """The numbers as a key: equal numbers, equal key."""
    steps = tuple(sorted((s, tuple(sorted(c.items()))) for s, c in numbers.steps.items()))
    return steps, tuple(sorted(numbers.edges.items()))


class Pictures:
    """Flow pictures of deployed versions with their live numbers, drawn by Graphviz's ``dot``."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._numbers: dict[int, tuple[float, Numbers]] = {}
        self._drawn: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def available() -> bool:
        return shutil.which("dot") is not None

    def numbers(self, session: Session, version_id: int, graph: StepGraph) -> Numbers:
        """The version's live numbers, read again once they are `LIVE_SECONDS` old."""
        now = self._monotonic()
        with self._lock:
            kept = self._numbers.get(version_id)
        if kept is not None and now - kept[0] < LIVE_SECONDS:
            return kept[1]
        found = version_numbers(session, graph, version_id)
        with self._lock:
            self._numbers[version_id] = (now, found)
        return found

    def live(
        self, session: Session, campaign_id: int, version: int
    ) -> tuple[StepGraph, Numbers, Hashable] | None:
        """The version's graph, live numbers and drawing key (for `draw`, which may then run
        with no transaction open); None when there is no such version."""
        row = session.execute(
            select(CampaignVersion.id, CampaignVersion.graph).where(
                CampaignVersion.campaign_id == campaign_id, CampaignVersion.version == version
            )
        ).one_or_none()
        if row is None:
            return None
        graph = StepGraph.from_json(row.graph)
        return graph, self.numbers(session, row.id, graph), ("live", row.id)

    def draw(self, graph: StepGraph, numbers: Numbers | None, kind: Hashable) -> bytes | None:
        """`graph` with `numbers`, kept under (`kind`, the numbers); None without Graphviz."""
        key = (kind, None if numbers is None else key_of(numbers))
        with self._lock:
            if key in self._drawn:
                self._drawn.move_to_end(key)
                return self._drawn[key]
        drawn = svg_of(to_dot(graph, numbers))
        if drawn is not None:
            with self._lock:
                self._drawn[key] = drawn
                while len(self._drawn) > DRAWINGS:
                    self._drawn.popitem(last=False)
        return drawn


def svg_of(dot_source: str) -> bytes | None:
    """Graphviz's SVG of the DOT source; None when it is missing or fails."""
    dot = shutil.which("dot")
    if dot is None:
        return None
    try:
        done = subprocess.run(
            [dot, "-Tsvg"],
            input=dot_source.encode("utf-8"),
            capture_output=True,
            timeout=DOT_SECONDS,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None
