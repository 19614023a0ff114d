"""The scoring rules behind a lead's points, as its 360 view shows them, without replaying
every event of a long story on every view.

The fit rules read only the profile: they are explained afresh each time.
The interest rules need every event the score counts (after the latest
return, up to now), thousands for a long story; their explanation changes
only when an event is added, moved or removed, when the model or the return
changes, when a counted event enters a new decay period (`next_decay`) or
when a stored future event comes of age. `Explanations` keeps the interest
part per lead, keyed by what changes it (the scoring definition, the return,
the lead's event count and newest event id, read with the model in one
statement) and valid until the next such moment, in a bounded LRU of this
process: a second view of the lead reads no events. The numbers are `explain`'s exactly, computed
the same way on a miss.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nurture.engine.scoring import Reason, explain, next_decay
from nurture.engine.state import LeadView, utc
from nurture.models import Definition, Delivery, Event
from nurture.store.views import EVENT_COLUMNS, engine_event

SIZE: Final = 4096
"""Leads whose interest explanation a console process keeps."""
ORDER: Final = (Event.occurred_at, Event.id)
"""Events oldest first, as the scores read them (repeats are told by order)."""


@dataclass(frozen=True, slots=True)
class _Kept:
    since: datetime
    until: datetime | None
    reasons: tuple[Reason, ...]


class Explanations:
    """The interest part of leads' explanations, kept while it cannot change (thread-safe)."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._kept: OrderedDict[Hashable, _Kept] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable, now: datetime) -> tuple[Reason, ...] | None:
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or now < kept.since or (kept.until is not None and now >= kept.until):
                self.misses += 1
                return None
            self._kept.move_to_end(key)
            self.hits += 1
            return kept.reasons

    def put(self, key: Hashable, kept: _Kept) -> None:
        with self._lock:
            self._kept[key] = kept
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)


def reasons(
    session: Session,
    lead_id: int,
    view: LeadView,
    after: datetime | None,
    now: datetime,
    kept: Explanations | None = None,
) -> list[Reason]:
    """The rules behind the lead's points at `now` (`explain` over the events after its
    latest return, `after`, up to `now`); `kept`, when given, spares reading the events."""
    lead_events = Event.lead_id == lead_id
    found_model = session.execute(
        select(
            Definition,
            select(func.count(Event.id)).where(lead_events).scalar_subquery(),
            select(func.max(Event.id)).where(lead_events).scalar_subquery(),
        )
        .where(Definition.kind == "scoring")
        .order_by(Definition.id.desc())
        .limit(1)
    ).one_or_none()  # the active model (`active`), and what the key needs, in one statement
    if found_model is None or not found_model[0].body:
        return []
    definition, count, newest = found_model
    model, now = dict(definition.body), utc(now)
    fit = explain({**model, "interest": []}, view, (), now)
    if kept is None:
        return fit + list(_interest(session, lead_id, view, model, after, now).reasons)
    key = (lead_id, definition.id, after, count, newest)
    found = kept.get(key, now)
    if found is None:
        computed = _interest(session, lead_id, view, model, after, now)
        kept.put(key, computed)
        found = computed.reasons
    return fit + list(found)


def _interest(
    session: Session,
    lead_id: int,
    view: LeadView,
    model: dict[str, Any],
    after: datetime | None,
    now: datetime,
) -> _Kept:
    """The interest rules' reasons at `now`, and until when they hold."""
    query = (
        select(*EVENT_COLUMNS)
        .outerjoin(Delivery, Delivery.id == Event.delivery_id)
        .where(Event.lead_id == lead_id)
    )
    if after is not None:
        query = query.where(Event.occurred_at > after)
    events = [engine_event(row) for row in session.execute(query.order_by(*ORDER))]
    counted = [event for event in events if event.at <= now]
    later = [event.at for event in events[len(counted) :]]
    changes = [at for at in (next_decay(model, counted, now), *later[:1]) if at is not None]
    found = explain({**model, "fit": []}, view, counted, now)
    return _Kept(now, min(changes, default=None), tuple(found))
