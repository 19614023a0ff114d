"""Enrolling leads: the campaigns' ``enroll when`` triggers, applied exactly once.

Leads, tags and events carry ``triggers_checked_at``: None until the runtime
has run the triggers for that row. Whoever writes them (the tracking API, an
import, a merge, a ``tag`` step) leaves it None; `check_lead` runs the
triggers for everything unchecked of one lead and marks it, in the caller's
transaction, with the lead's row locked. So each lead creation, new tag and
event is looked at once, whether by the ``on_lead`` hook at once or by the
scheduler's next poll, and a lead enters a campaign only as its ``reenter``
rule allows (`nurture.engine.triggers`).

`sweep_inactive` and `sweep_segments` are the periodic checks of ``enroll
when inactive for`` and ``enroll when segment``: a lead can fall quiet, or
enter a segment (an event ages out of ``within 30 days``, interest decays),
with nothing happening to it. Segment triggers are also checked on each
happening of the lead, so most leads enter at once and the sweep catches the
rest. `enroll_into` serves the ``enroll "<campaign>"`` step, `enroll_returned`
``enroll when returned`` (sales sent the lead back, in that transaction). Enrollments
start at the entry of the campaign's current version, due at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from nurture.engine.state import EnrollmentState, Event
from nurture.engine.triggers import (
    Candidate,
    EventOccurred,
    Happening,
    LeadCreated,
    PastEnrollment,
    Returned,
    Sweep,
    TagAdded,
    may_enter,
    should_enroll,
)
from nurture.models import Campaign, CampaignVersion, Enrollment, Lead, Tag
from nurture.models import Event as EventRow
from nurture.runtime.database import is_postgres
from nurture.runtime.loading import Graphs, Version, columns_of, lead_view, load_events
from nurture.segments.sql import to_sql
from nurture.store.definitions import active_segments

Bool = ColumnElement[bool]


@dataclass(frozen=True, slots=True)
class Triggers:
    """What the current campaigns enroll on, to skip leads and events none of them cares about."""

    versions: tuple[Version, ...]
    tags: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset()
    created: bool = False
    segments: bool = False

    @classmethod
    def of(cls, versions: Iterable[Version]) -> Triggers:
        versions = tuple(versions)
        ons = [t for v in versions for t in v.graph.triggers]
        return cls(
            versions,
            frozenset(str(t.get("tag")) for t in ons if t.get("on") == "tagged"),
            frozenset(str(t.get("name")) for t in ons if t.get("on") == "event"),
            any(t.get("on") == "created" for t in ons),
            any(t.get("on") == "segment" for t in ons),
        )

    def wanted(self, happening: Happening) -> bool:
        """Whether any campaign may enroll on `happening` (a segment may, on anything)."""
        if self.segments:
            return True
        if isinstance(happening, LeadCreated):
            return self.created
        if isinstance(happening, TagAdded):
            return happening.tag in self.tags
        if isinstance(happening, EventOccurred):
            return happening.event.name in self.events
        return False


@dataclass(slots=True)
class Enrolled:
    """What a trigger check did: the new enrollments (due now) and the rows it marked."""

    enrollments: list[int] = field(default_factory=list)
    leads: int = 0


def current_triggers(session: Session, graphs: Graphs) -> Triggers:
    return Triggers.of(graphs.current(session))


def unchecked_leads(session: Session, limit: int) -> list[int]:
    """Leads with a creation, tag or event whose triggers have not run yet, oldest first."""
    found: set[int] = set()
    for query in (
        select(Lead.id).where(Lead.triggers_checked_at.is_(None)).order_by(Lead.id),
        select(Tag.lead_id).where(Tag.triggers_checked_at.is_(None)).order_by(Tag.lead_id),
        select(EventRow.lead_id)
        .where(EventRow.triggers_checked_at.is_(None))
        .order_by(EventRow.id),
    ):
        found.update(session.scalars(query.limit(limit)))
    return sorted(found)[:limit]


def check_lead(
    session: Session, lead_id: int, triggers: Triggers, now: datetime
) -> list[int] | None:
    """Run the triggers for what is unchecked of one lead; the new enrollment ids.

    None when another process holds the lead (PostgreSQL: it is checking it
    now; this one skips it rather than wait).
    """
    lead = _lock_lead(session, lead_id, skip_locked=True)
    if lead is None:
        return None
    happenings: list[Happening] = []
    if lead.triggers_checked_at is None:
        happenings.append(LeadCreated(lead.created_at))
    tags = session.execute(
        select(Tag.tag, Tag.tagged_at).where(
            Tag.lead_id == lead_id, Tag.triggers_checked_at.is_(None)
        )
    ).all()
    happenings += [TagAdded(tag, at) for tag, at in tags]
    event_ids = list(
        session.scalars(
            select(EventRow.id).where(
                EventRow.lead_id == lead_id, EventRow.triggers_checked_at.is_(None)
            )
        )
    )
    if event_ids:
        rows = session.execute(
            select(EventRow.type, EventRow.name, EventRow.occurred_at, EventRow.link)
            .where(EventRow.id.in_(event_ids))
            .order_by(EventRow.occurred_at, EventRow.id)
        )
        happenings += [EventOccurred(_event(r)) for r in rows]
    wanted = [h for h in happenings if triggers.wanted(h)]
    created = _enroll(session, lead, wanted, triggers.versions, now) if wanted else []
    _mark(session, lead_id, event_ids, now)
    return created


def _event(r: Any) -> Event:
    name = r.name if r.type == "custom" and r.name else r.type
    return Event(name=name, at=r.occurred_at, link=r.link)


def _mark(session: Session, lead_id: int, event_ids: Sequence[int], now: datetime) -> None:
    session.execute(
        update(Lead)
        .where(Lead.id == lead_id, Lead.triggers_checked_at.is_(None))
        .values(triggers_checked_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Tag)
        .where(Tag.lead_id == lead_id, Tag.triggers_checked_at.is_(None))
        .values(triggers_checked_at=now)
        .execution_options(synchronize_session=False)
    )
    if event_ids:
        session.execute(
            update(EventRow)
            .where(EventRow.id.in_(event_ids))
            .values(triggers_checked_at=now)
            .execution_options(synchronize_session=False)
        )


def _lock_lead(session: Session, lead_id: int, *, skip_locked: bool = False) -> Lead | None:
    """The lead, its row locked until the transaction ends (SQLite: the whole database is)."""
    query = select(Lead).where(Lead.id == lead_id)
    if is_postgres(session):
        query = query.with_for_update(skip_locked=skip_locked)
    return session.scalars(query).one_or_none()


def _enroll(
    session: Session,
    lead: Lead,
    happenings: Sequence[Happening],
    versions: Sequence[Version],
    now: datetime,
) -> list[int]:
    """Enroll `lead` where a happening fires a trigger and reentry allows; the new ids."""
    reads = any(_segment(v) or _counts(v) for v in versions)
    candidate = _candidate(session, lead, now, with_events=reads)
    segments = active_segments(session) if any(_segment(v) for v in versions) else None
    created: list[int] = []
    past = list(candidate.past)
    for version in versions:
        for happening in happenings:
            current = Candidate(candidate.lead, candidate.events, past)
            if should_enroll(version.graph, current, happening, now, segments):
                created.append(_start(session, lead.id, version, now))
                past.append(PastEnrollment(version.campaign, now))
                break
    return created


def _segment(version: Version) -> bool:
    return _on(version, "segment")


def _on(version: Version, kind: str) -> bool:
    return any(t.get("on") == kind for t in version.graph.triggers)


def _counts(version: Version) -> bool:
    """Whether a trigger counts events (`enroll when event "x" count >= 3`): it reads them."""
    return any("count" in t for t in version.graph.triggers)


def _candidate(session: Session, lead: Lead, now: datetime, *, with_events: bool) -> Candidate:
    """The lead as triggers see it; its events only when a segment or a count reads them."""
    tags = session.scalars(select(Tag.tag).where(Tag.lead_id == lead.id))
    events = load_events(session, [lead.id], now).get(lead.id, []) if with_events else []
    return Candidate(lead_view(lead, tags), events, past_enrollments(session, lead.id))


def past_enrollments(session: Session, lead_id: int) -> list[PastEnrollment]:
    """Every enrollment of the lead, by campaign name (`ended_at` None: still running)."""
    rows = session.execute(
        select(Campaign.name, Enrollment.entered_at, Enrollment.ended_at)
        .join(CampaignVersion, CampaignVersion.id == Enrollment.campaign_version_id)
        .join(Campaign, Campaign.id == CampaignVersion.campaign_id)
        .where(Enrollment.lead_id == lead_id)
    )
    return [PastEnrollment(name, entered, ended) for name, entered, ended in rows]


def _start(session: Session, lead_id: int, version: Version, now: datetime) -> int:
    state = EnrollmentState.start(0, version.graph, now)
    enrollment = Enrollment(
        lead_id=lead_id,
        campaign_version_id=version.id,
        entered_at=now,
        **columns_of(state),
    )
    session.add(enrollment)
    session.flush()
    return enrollment.id


def enroll_into(
    session: Session, lead_id: int, campaign: str, now: datetime, graphs: Graphs
) -> int | None:
    """The ``enroll "<campaign>"`` step: enter the campaign's current version if reentry allows."""
    version = next((v for v in graphs.current(session) if v.campaign == campaign), None)
    lead = _lock_lead(session, lead_id)
    if version is None or lead is None:
        return None
    candidate = _candidate(session, lead, now, with_events=False)
    if candidate.lead.suppressed:
        return None
    if not may_enter(version.graph, candidate.past, now):
        return None
    return _start(session, lead_id, version, now)


def sweep_inactive(session: Session, triggers: Triggers, now: datetime, limit: int) -> list[int]:
    """``enroll when inactive for``: enroll leads quiet that long; the new enrollment ids."""
    wanted: list[tuple[Version, Bool]] = []
    for version in triggers.versions:
        for trigger in version.graph.triggers:
            if trigger.get("on") == "inactive":
                span = timedelta(seconds=float(trigger.get("seconds") or 0))
                quiet = func.coalesce(Lead.last_activity_at, Lead.created_at) <= now - span
                wanted.append((version, quiet))
    return _sweep(session, wanted, now, limit)


def sweep_segments(session: Session, triggers: Triggers, now: datetime, limit: int) -> list[int]:
    """``enroll when segment``: enroll the segments' members that may enter; the new ids.

    Each segment is one SQL query (`nurture.segments.to_sql`); each lead it
    finds is checked again by the engine's own trigger rule before it enters.
    """
    if not triggers.segments:
        return []
    segments = active_segments(session)
    wanted: list[tuple[Version, Bool]] = []
    for version in triggers.versions:
        for trigger in version.graph.triggers:
            segment = segments.get(str(trigger.get("segment")))
            if trigger.get("on") == "segment" and segment is not None:
                wanted.append((version, to_sql(segment, now)))
    return _sweep(session, wanted, now, limit)


def _sweep(
    session: Session, wanted: Sequence[tuple[Version, Bool]], now: datetime, limit: int
) -> list[int]:
    """Enroll, on a `Sweep`, up to `limit` leads that match a campaign's condition."""
    created: list[int] = []
    for version, condition in wanted:
        if len(created) >= limit:
            break
        for lead_id in _sweepable(session, version, condition, now, limit - len(created)):
            lead = _lock_lead(session, lead_id, skip_locked=True)
            if lead is not None:
                created += _enroll(session, lead, [Sweep(now)], [version], now)
    return created


def _sweepable(
    session: Session, version: Version, condition: Bool, now: datetime, limit: int
) -> list[int]:
    """Leads matching `condition`, not suppressed, that the campaign's reentry may let in."""
    mine = (
        select(Enrollment.id)
        .join(CampaignVersion, CampaignVersion.id == Enrollment.campaign_version_id)
        .where(CampaignVersion.campaign_id == version.campaign_id, Enrollment.lead_id == Lead.id)
    )
    reenter = version.graph.reenter_after
    if reenter is not None:
        since = now - timedelta(seconds=reenter)
        mine = mine.where(or_(Enrollment.ended_at.is_(None), Enrollment.ended_at > since))
    query = (
        select(Lead.id)
        .where(
            condition,
            and_(
                Lead.unsubscribed_at.is_(None),
                Lead.hard_bounced_at.is_(None),
                Lead.complained_at.is_(None),
            ),
            ~exists(mine),
        )
        .order_by(Lead.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def enroll_returned(session: Session, lead_id: int, now: datetime, graphs: Graphs) -> list[int]:
    """``enroll when returned``: sales sent the lead back to nurture now; the new ids."""
    versions = [
        v
        for v in graphs.current(session)
        if any(t.get("on") == "returned" for t in v.graph.triggers)
    ]
    lead = _lock_lead(session, lead_id) if versions else None
    if lead is None:
        return []
    return _enroll(session, lead, [Returned(now)], versions, now)
