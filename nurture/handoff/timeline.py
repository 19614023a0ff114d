"""A lead's timeline in words, whole or a page of the newest entries before a position.

Entries come from six tables: touches, events, stage changes, acceptances,
notes and assignments. They are ordered by (time, source, id), the source
in that order, so the order is total and a position (`Cursor`) names the
place between two entries exactly: paging back by it shows every entry once,
also when several share a time. A page reads at most ``limit + 1`` rows of
each table that can be long (events, touches, assignments) with the
position in the ``WHERE``, newest first, on their ``(lead_id, time)``
indexes; the stage changes, MQLs and notes the caller has read whole already.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from nurture.engine.state import utc
from nurture.models import (
    Assignment,
    Campaign,
    CampaignVersion,
    Delivery,
    Enrollment,
    Event,
    LeadNote,
    LifecycleTransition,
    MqlRecord,
)

SOURCES: Final = ("touch", "event", "stage", "accepted", "note", "assignment")
"""The kinds of entry, in the order entries at the same time follow each other."""
RANK: Final = {kind: rank for rank, kind in enumerate(SOURCES)}
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ROW: Final = 2**31 - 1
"""The largest id a row has (INTEGER): a place past it names none, and would not fit."""
Source = tuple[Any, Any, Any]
"""A source's query, and its time and id columns."""
_CURSOR: Final = re.compile(r"(-?\d{1,18})-([0-5])-(\d{1,18})")


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    """A place in a lead's timeline: the entry at `at` of source `rank` with row `id`."""

    at: datetime
    rank: int
    id: int

    def text(self) -> str:
        """The position as URL-safe text: microseconds since 1970, the source, the id."""
        return f"{(utc(self.at) - EPOCH) // timedelta(microseconds=1)}-{self.rank}-{self.id}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """The position `text` names; `ValueError` saying what is wrong otherwise."""
        found = _CURSOR.fullmatch(text.strip())
        if found is None:
            raise ValueError(
                f"{text[:40]!r} is not a place in the timeline "
                "(one looks like 1772445600000000-1-42)"
            )
        micros, rank, row = (int(part) for part in found.groups())
        if row > MAX_ROW:
            raise ValueError(f"{text[:40]!r} is not a place in the timeline (no such row)")
        try:
            return cls(EPOCH + timedelta(microseconds=micros), rank, row)
        except OverflowError:
            raise ValueError(
                f"{text[:40]!r} is not a place in the timeline (no such time)"
            ) from None


@dataclass(frozen=True, slots=True)
class Entry:
    at: datetime
    kind: str
    what: str
    id: int

    @property
    def cursor(self) -> Cursor:
        return Cursor(utc(self.at), RANK[self.kind], self.id)


@dataclass(frozen=True, slots=True)
class Page:
    """Timeline entries newest first, and the position of the page before them (older)."""

    entries: list[Entry]
    older: Cursor | None


def timeline(
    session: Session,
    lead_id: int,
    steps: Sequence[LifecycleTransition],
    mqls: Sequence[MqlRecord],
    notes: Sequence[LeadNote],
    *,
    limit: int | None = None,
    before: Cursor | None = None,
) -> Page:
    """The newest `limit` entries before `before` (every entry: `limit` None), newest first.

    `steps`, `mqls` and `notes` are the lead's own, read whole by the caller.
    """
    take = None if limit is None else limit + 1
    found: list[Entry] = []
    for at, campaign, touch in session.execute(_paged(_touches(lead_id), "touch", before, take)):
        what = f'{touch.channel} "{touch.template}" from campaign "{campaign}": {touch.status}'
        found.append(Entry(at, "touch", what, touch.id))
    for row in session.execute(_paged(_events(lead_id), "event", before, take)):
        found.append(Entry(row.at, "event", event_words(row), row.id))
    for row in session.execute(_paged(_assignments(lead_id), "assignment", before, take)):
        who = row.owner or "nobody"
        found.append(Entry(row.at, "assignment", f"to {who} ({row.cause}): {row.reason}", row.id))
    found.extend(_read(steps, mqls, notes))
    if before is not None:
        found = [entry for entry in found if entry.cursor < before]
    if limit is None:
        return Page(sorted(found, key=lambda e: e.cursor, reverse=True), None)
    newest = heapq.nlargest(limit + 1, found, key=lambda e: e.cursor)
    older = newest[limit - 1].cursor if len(newest) > limit and limit > 0 else None
    return Page(newest[:limit], older)


def _read(
    steps: Iterable[LifecycleTransition], mqls: Iterable[MqlRecord], notes: Iterable[LeadNote]
) -> Iterable[Entry]:
    for step in steps:
        what = f"{step.from_stage or 'new'} → {step.to_stage}: {step.cause}"
        if step.amount is not None:
            what += f" (amount {step.amount})"
        yield Entry(step.at, "stage", what, step.id)
    for mql in mqls:
        if mql.accepted_at is not None:
            yield Entry(mql.accepted_at, "accepted", f"accepted by {mql.owner}", mql.id)
    for note in notes:
        yield Entry(note.at, "note", f"{note.author}: {note.text}", note.id)


def event_words(event: Any) -> str:
    """An event (its type, name and link) in words."""
    what = f'"{event.name}"' if event.type == "custom" and event.name else event.type
    return what + (f" {event.link}" if event.link else "")


def _touches(lead_id: int) -> Source:
    at = func.coalesce(Delivery.sent_at, Delivery.created_at)
    query = (
        select(at.label("at"), Campaign.name, Delivery)
        .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
        .join(CampaignVersion, CampaignVersion.id == Enrollment.campaign_version_id)
        .join(Campaign, Campaign.id == CampaignVersion.campaign_id)
        .where(Delivery.lead_id == lead_id)
    )
    return query, at, Delivery.id


def _events(lead_id: int) -> Source:
    columns = (Event.occurred_at.label("at"), Event.id, Event.type, Event.name, Event.link)
    return select(*columns).where(Event.lead_id == lead_id), Event.occurred_at, Event.id


def _assignments(lead_id: int) -> Source:
    columns = (Assignment.at, Assignment.id, Assignment.owner, Assignment.cause, Assignment.reason)
    return select(*columns).where(Assignment.lead_id == lead_id), Assignment.at, Assignment.id


def _paged(
    source: Source,
    kind: str,
    before: Cursor | None,
    take: int | None,
) -> Any:
    """`source` newest first, only its rows before `before`, at most `take` of them."""
    query, at, row_id = source
    if before is not None:
        rank = RANK[kind]
        if rank < before.rank:
            query = query.where(at <= before.at)
        elif rank > before.rank:
            query = query.where(at < before.at)
        else:
            query = query.where(or_(at < before.at, and_(at == before.at, row_id < before.id)))
    if take is None:
        return query
    return query.order_by(at.desc(), row_id.desc()).limit(take)
