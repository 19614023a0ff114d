"""The campaigns pages' data: each deployed campaign with its leads, and one campaign's
versions, per-step touches and engagement (`nurture.reports.campaign_report`), and its flow
drawn by Graphviz as ``nurture graph --format svg`` draws it.

The picture is served as an image (``image/svg+xml`` in an ``<img>``), where no script in
it could run; it is drawn once per version and process (a version never changes).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from dataclasses import dataclass
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dsl.draw import to_dot
from dsl.graph import StepGraph
from nurture.models import Campaign, CampaignVersion, Enrollment

DOT_SECONDS: Final = 30.0


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


class Pictures:
    """Flow pictures by version id, drawn by Graphviz's ``dot`` once each."""

    def __init__(self) -> None:
        self._drawn: dict[int, bytes] = {}
        self._lock = threading.Lock()

    @staticmethod
    def available() -> bool:
        return shutil.which("dot") is not None

    def svg(self, session: Session, campaign_id: int, version: int) -> bytes | None:
        """The version's picture; None when there is no such version or no Graphviz."""
        row = session.execute(
            select(CampaignVersion.id, CampaignVersion.graph).where(
                CampaignVersion.campaign_id == campaign_id, CampaignVersion.version == version
            )
        ).one_or_none()
        dot = shutil.which("dot")
        if row is None or dot is None:
            return None
        with self._lock:
            if row.id in self._drawn:
                return self._drawn[row.id]
        source = to_dot(StepGraph.from_json(row.graph)).encode("utf-8")
        try:
            done = subprocess.run(
                [dot, "-Tsvg"], input=source, capture_output=True, timeout=DOT_SECONDS
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode != 0:
            return None
        with self._lock:
            self._drawn[row.id] = done.stdout
        return done.stdout
