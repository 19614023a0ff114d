"""Rows in, the core's data out: one batch of enrollments loaded with a handful of queries.

For a batch of up to a few hundred enrollments: one query for the
enrollments, one for their leads, one for the leads' tags, one for their
events (joined to the deliveries they belong to, so ``opened`` finds its
message), one for their send history (only when a cap applies) and one for
the batch's own deliveries. Step graphs are parsed once per process and kept
by version id: a deployed version never changes.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from dsl.graph import StepGraph
from dsl.templates import TemplateFile, TemplateSource
from nurture.engine.caps import Cap
from nurture.engine.state import (
    EnrollmentState,
    Event,
    LeadView,
    SentTouch,
)
from nurture.models import Campaign, CampaignVersion, Delivery, Enrollment, Lead, Tag
from nurture.models import Event as EventRow
from nurture.runtime.database import among
from nurture.store.consents import closed_for_consent
from nurture.store.suppressions import closed_channels
from nurture.store.views import EVENT_COLUMNS, engine_event, view_of

COUNTED: Final = ("sent", "pending", "unknown")
"""Delivery statuses that count as a touch for frequency caps."""


@dataclass(frozen=True, slots=True)
class Version:
    """A deployed campaign version: its id, its campaign's name and its graph."""

    id: int
    campaign_id: int
    campaign: str
    graph: StepGraph


class CachedTemplates:
    """A `TemplateSource` whose lookups are kept for `ttl` seconds.

    Every touch renders a template; reading its file each time costs more
    than rendering a short one. An edited template is seen within `ttl`.
    """

    def __init__(
        self,
        source: TemplateSource,
        ttl: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.ttl = ttl
        self._monotonic = monotonic
        self._found: dict[tuple[str, str, str], tuple[float, TemplateFile | None]] = {}

    def find(self, channel: str, name: str, near: str) -> TemplateFile | None:
        key, now = (channel, name, near), self._monotonic()
        hit = self._found.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        found = self.source.find(channel, name, near)
        if len(self._found) > 4096:
            self._found.clear()
        self._found[key] = (now, found)
        return found


class Graphs:
    """Campaign versions by id, parsed once per process (versions are never edited)."""

    def __init__(self) -> None:
        self._versions: dict[int, Version] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, version_ids: Iterable[int]) -> dict[int, Version]:
        wanted = set(version_ids)
        with self._lock:
            missing = wanted - self._versions.keys()
        if missing:
            rows = session.execute(
                select(CampaignVersion.id, CampaignVersion.campaign_id, Campaign.name)
                .add_columns(CampaignVersion.graph)
                .join(Campaign, Campaign.id == CampaignVersion.campaign_id)
                .where(CampaignVersion.id.in_(missing))
            )
            parsed = {
                r.id: Version(r.id, r.campaign_id, r.name, StepGraph.from_json(r.graph))
                for r in rows
            }
            with self._lock:
                self._versions.update(parsed)
        with self._lock:
            return {i: self._versions[i] for i in wanted if i in self._versions}

    def current(self, session: Session) -> list[Version]:
        """The version new leads enter, of every deployed campaign."""
        ids = session.scalars(
            select(CampaignVersion.id)
            .join(Campaign, Campaign.id == CampaignVersion.campaign_id)
            .where(CampaignVersion.version == Campaign.current_version)
            .order_by(Campaign.name)
        ).all()
        found = self.get(session, ids)
        return [found[i] for i in ids if i in found]


@dataclass(slots=True)
class Existing:
    """A delivery row of the batch, by key."""

    id: int
    status: str
    attempts: int
    message_id: str


@dataclass(slots=True)
class Item:
    """One enrollment of a batch, with everything `decide` needs."""

    row: Row[Any]
    version: Version
    lead: Row[Any]
    view: LeadView
    events: list[Event]
    history: list[SentTouch]
    deliveries: dict[tuple[str, int], Existing] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return int(self.row.id)

    @property
    def graph(self) -> StepGraph:
        return self.version.graph

    def state(self) -> EnrollmentState:
        return state_of(self.row)

    @property
    def unknown(self) -> list[Existing]:
        return [d for d in self.deliveries.values() if d.status == "unknown"]


def state_of(row: Any) -> EnrollmentState:
    """The core's `EnrollmentState` from an enrollment row (`memory` holds `sent`)."""
    memory = row.memory or {}
    return EnrollmentState.from_json(
        {
            "id": row.id,
            "cursor": row.cursor,
            "entered_at": row.entered_at.isoformat(),
            "state": row.state,
            "next_run_at": None if row.next_run_at is None else row.next_run_at.isoformat(),
            "waiting_for": row.waiting_for or None,
            "loops": dict(row.iterations or {}),
            "sent": memory.get("sent") or {},
            "last_sent": memory.get("last_sent"),
            "exit_reason": row.exit_reason,
            "ended_at": None if row.ended_at is None else row.ended_at.isoformat(),
        }
    )


def columns_of(state: EnrollmentState) -> dict[str, Any]:
    """The enrollment columns that store `state` (the inverse of `state_of`)."""
    data = state.to_json()
    sent = data["sent"]
    return {
        "cursor": state.cursor,
        "state": state.state,
        "next_run_at": state.next_run_at,
        "waiting_for": data["waiting_for"],
        "iterations": dict(state.loops),
        "memory": {"sent": sent, "last_sent": state.last_sent} if sent else None,
        "exit_reason": state.exit_reason,
        "ended_at": state.ended_at,
    }


def lead_view(row: Any, tags: Iterable[str]) -> LeadView:
    """The core's `LeadView` of a selected lead row (see `nurture.store.views.view_of`)."""
    return view_of(row, tags)


def load_batch(
    session: Session,
    ids: Sequence[int],
    graphs: Graphs,
    now: datetime,
    global_cap: Cap | None,
    require_consent: Sequence[str] = (),
) -> list[Item]:
    """The claimed enrollments `ids` with their leads, events, history and deliveries; a
    channel closed for a lead (its address, or no consent where one is required) is in its
    view's `closed`."""
    rows = session.execute(
        select(Enrollment.__table__).where(among(session, Enrollment.id, ids))
    ).all()
    versions = graphs.get(session, {r.campaign_version_id for r in rows})
    lead_ids = sorted({r.lead_id for r in rows})
    leads = {
        r.id: r
        for r in session.execute(select(Lead.__table__).where(among(session, Lead.id, lead_ids)))
    }
    tags = _tags(session, lead_ids)
    closed = closed_channels(session, leads.values())
    for lead_id, channels in closed_for_consent(session, lead_ids, require_consent).items():
        closed[lead_id] = {**channels, **closed.get(lead_id, {})}
    events = load_events(session, lead_ids, now)
    longest = _longest_cap([v.graph for v in versions.values()], global_cap)
    history = _history(session, lead_ids, now - longest) if longest else {}
    items: list[Item] = []
    for row in rows:
        version, lead = versions.get(row.campaign_version_id), leads.get(row.lead_id)
        if version is None or lead is None:
            continue
        view = lead_view(lead, tags.get(lead.id, ()))
        if lead.id in closed:
            view = replace(view, closed=closed[lead.id])
        item = Item(row, version, lead, view, events.get(lead.id, []), history.get(lead.id, []))
        items.append(item)
    by_id = {item.id: item for item in items}
    for d in session.execute(
        select(
            Delivery.id,
            Delivery.enrollment_id,
            Delivery.step_id,
            Delivery.iteration,
            Delivery.status,
            Delivery.attempts,
            Delivery.message_id,
        ).where(among(session, Delivery.enrollment_id, by_id))
    ):
        existing = Existing(d.id, d.status, d.attempts, d.message_id)
        by_id[d.enrollment_id].deliveries[(d.step_id, d.iteration)] = existing
    return items


def _tags(session: Session, lead_ids: Sequence[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    for lead_id, tag in session.execute(
        select(Tag.lead_id, Tag.tag).where(among(session, Tag.lead_id, lead_ids))
    ):
        found[lead_id].append(tag)
    return found


def load_events(session: Session, lead_ids: Sequence[int], now: datetime) -> dict[int, list[Event]]:
    """The leads' events up to `now`, oldest first, each with the delivery it belongs to."""
    rows = session.execute(
        select(EventRow.lead_id, *EVENT_COLUMNS)
        .outerjoin(Delivery, Delivery.id == EventRow.delivery_id)
        .where(among(session, EventRow.lead_id, lead_ids), EventRow.occurred_at <= now)
        .order_by(EventRow.occurred_at, EventRow.id)
    )
    found: dict[int, list[Event]] = defaultdict(list)
    for r in rows:
        found[r.lead_id].append(engine_event(r))
    return found


def _longest_cap(graphs: Iterable[StepGraph], global_cap: Cap | None) -> timedelta | None:
    periods = [Cap.from_json(c).period for g in graphs for c in g.caps]
    if global_cap is not None:
        periods.append(global_cap.period)
    return max(periods) if periods else None


def _history(
    session: Session, lead_ids: Sequence[int], since: datetime
) -> Mapping[int, list[SentTouch]]:
    rows = session.execute(
        select(Delivery.lead_id, Delivery.created_at, Campaign.name)
        .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
        .join(CampaignVersion, CampaignVersion.id == Enrollment.campaign_version_id)
        .join(Campaign, Campaign.id == CampaignVersion.campaign_id)
        .where(
            among(session, Delivery.lead_id, lead_ids),
            Delivery.created_at > since,
            Delivery.status.in_(COUNTED),
        )
    )
    found: dict[int, list[SentTouch]] = defaultdict(list)
    for lead_id, at, campaign in rows:
        found[lead_id].append(SentTouch(at, campaign))
    for touches in found.values():
        touches.sort(key=lambda t: t.at)
    return found
