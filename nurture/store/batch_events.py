"""Events in batches, for imports at scale: what `record_event` does, a batch at a time.

`nurture.store.scoring.record_event` stores one event, reloads the lead, its
tags and events, rescores it and applies the MQL rule: about ten statements
an event. `EventBatcher` does the same for a batch of a few thousand events
with a handful of statements: it resolves the leads (and deliveries) the
events name with ``IN`` lists, loads the leads, their tags, their events and
their last return once, and replays the batch in memory, event by event in
file order, as `record_event` would: activity and suppression columns (an
unsubscribe or hard bounce that names its channel closes only that channel
for the lead's address on it), the
scores at ``max(now, at)``, the next decay moment, and the MQL rule after
each event. Then one multi-row ``INSERT`` stores the events and one
executemany ``UPDATE`` the leads; the enrollments waiting for an event are
woken as `nurture.store.wake` wakes them.

A lead for which the MQL rule holds after one of its events takes the
row-by-row path from that event on (`record_event`: the transition, routing
and notice in the same transaction, with the event that qualified it as the
cause), after the batch's other events are stored.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, cast

from sqlalchemy import Table, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from nurture.engine.scoring import CompiledScoring, next_decay
from nurture.engine.state import WAITING, DeliveryKey, Event, LeadView, Scores, utc
from nurture.models import Delivery, Enrollment, Lead, LeadMerge, LifecycleTransition, Tag
from nurture.models import Event as EventRow
from nurture.runtime.database import among, among_texts
from nurture.store.scoring import CHANNEL_CLOSING, SUPPRESSING, Rules, record_event
from nurture.store.suppressions import ADDRESS_OF, close_lead_channel
from nurture.store.views import EVENT_COLUMNS, engine_event, view_of
from nurture.store.wake import wake_waiting
from nurture.tracking.schema import EventInput, Problem

EVENTS: Final = cast(Table, EventRow.__table__)
LEADS: Final = cast(Table, Lead.__table__)
ENROLLMENTS: Final = cast(Table, Enrollment.__table__)
STATE: Final = (
    "last_activity_at",
    "unsubscribed_at",
    "hard_bounced_at",
    "complained_at",
    "suppressed_reason",
)
"""The lead columns an event itself changes (`nurture.store.scoring._touch`)."""
ACTIVITY: Final = frozenset(
    {"opened", "clicked", "replied", "form_submitted", "page_viewed", "custom"}
)


@dataclass(slots=True)
class _Lead:
    """One lead while its batch is replayed in memory."""

    row: Any
    tags: list[str]
    events: list[tuple[datetime, int, Event]]
    """The lead's events sorted as `engine_events` sorts them: time, then insertion order."""
    returned_at: datetime | None
    columns: dict[str, Any]
    scores: dict[str, Any] = field(default_factory=dict)
    fit: tuple[Any, float] | None = None
    """The fit score last computed and what it was computed from (the columns, the moment)."""
    slow: bool = False
    """True when the MQL rule held after one of the batch's events: then all of the lead's
    events in the batch take the row-by-row path, in order."""


class EventBatcher:
    """Records an import's events batch by batch in the caller's transaction (see the module)."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session = session
        self.now = utc(now)
        self.rules = Rules.active(session)
        self.model = dict(self.rules.scoring) if self.rules.scoring else None
        self.compiled = CompiledScoring(self.model) if self.model else None
        """The model's conditions compiled once (`compute_scores` reads the JSON per call)."""
        self.recorded = 0
        self.woken: list[int] = []
        self._woken: set[int] = set()
        self._deliveries: dict[int, tuple[int, DeliveryKey | None]] = {}

    # ------------------------------------------------------------ resolving

    def resolve(self, batch: Sequence[EventInput]) -> tuple[list[int], list[tuple[int, Problem]]]:
        """The lead of each event (0 when none) and the problems: (index in batch, problem)."""
        refs = [e.lead.given() for e in batch]
        found = _leads_named(self.session, refs)
        wanted = sorted({e.delivery_id for e in batch if e.delivery_id is not None})
        self._deliveries = _deliveries(self.session, wanted)
        problems: list[tuple[int, Problem]] = []
        leads: list[int] = []
        for index, (event, given) in enumerate(zip(batch, refs, strict=True)):
            ids: dict[str, int] = {}
            for key, value in given.items():
                lead_id = found.get((key, value))
                if lead_id is None:
                    problems.append(
                        (index, Problem(f"$.lead.{key}", f"no lead with {key} {value}"))
                    )
                    break
                ids[key] = lead_id
            else:
                if len(set(ids.values())) > 1:
                    names = " and ".join(ids)
                    problems.append((index, Problem("$.lead", f"{names} name different leads")))
                    ids = {}
            lead = next(iter(ids.values())) if ids and len(ids) == len(given) else 0
            if lead and event.delivery_id is not None:
                delivery = self._deliveries.get(event.delivery_id)
                if delivery is None or delivery[0] != lead:
                    message = f"no delivery {event.delivery_id} of this lead"
                    problems.append((index, Problem("$.delivery_id", message)))
            leads.append(lead)
        return leads, problems

    # ------------------------------------------------------------ recording

    def record(self, batch: Sequence[EventInput], leads: Sequence[int]) -> None:
        """Record a resolved batch (the leads from `resolve`, no problems); the caller commits."""
        states = self._load(sorted(set(leads)))
        at_of = [utc(e.at or self.now) for e in batch]
        for index, (event, lead_id) in enumerate(zip(batch, leads, strict=True)):
            state = states[lead_id]
            if not state.slow:
                self._replay(state, index, event, at_of[index])
        fast = [i for i, lead in enumerate(leads) if not states[lead].slow]
        self._insert(batch, leads, at_of, fast)
        self._update(states)
        self._wake(list(dict.fromkeys(leads[i] for i in fast)))
        for index, (event, lead_id) in enumerate(zip(batch, leads, strict=True)):
            if states[lead_id].slow:
                self._record_one(event, lead_id, at_of[index])
        self.recorded += len(batch)
        self.session.flush()
        self.session.expunge_all()  # nothing of this batch stays in memory (or goes stale)

    def _load(self, lead_ids: list[int]) -> dict[int, _Lead]:
        rows = {
            r.id: r
            for r in self.session.execute(
                select(LEADS).where(among(self.session, LEADS.c.id, lead_ids))
            )
        }
        tags: dict[int, list[str]] = defaultdict(list)
        events: dict[int, list[tuple[datetime, int, Event]]] = defaultdict(list)
        returned: dict[int, datetime] = {}
        if self.model is not None:  # without a scoring model every score is zero
            for lead_id, tag in self.session.execute(
                select(Tag.lead_id, Tag.tag).where(among(self.session, Tag.lead_id, lead_ids))
            ):
                tags[lead_id].append(tag)
            query = (
                select(EventRow.lead_id, EventRow.id, *EVENT_COLUMNS)
                .outerjoin(Delivery, Delivery.id == EventRow.delivery_id)
                .where(among(self.session, EventRow.lead_id, lead_ids))
                .order_by(EventRow.occurred_at, EventRow.id)
            )
            for r in self.session.execute(query):
                events[r.lead_id].append((utc(r.occurred_at), r.id, engine_event(r)))
            transitions = (
                select(LifecycleTransition.lead_id, func.max(LifecycleTransition.at))
                .where(
                    among(self.session, LifecycleTransition.lead_id, lead_ids),
                    LifecycleTransition.to_stage == "returned",
                )
                .group_by(LifecycleTransition.lead_id)
            )
            returned = {i: utc(at) for i, at in self.session.execute(transitions)}
        return {
            i: _Lead(
                row=row,
                tags=tags[i],
                events=events[i],
                returned_at=returned.get(i),
                columns={name: getattr(row, name) for name in STATE},
            )
            for i, row in rows.items()
        }

    def _replay(self, state: _Lead, index: int, event: EventInput, at: datetime) -> None:
        """What `record_event` does to the lead for this event, in memory."""
        columns = state.columns
        if event.type in ACTIVITY and (
            columns["last_activity_at"] is None or utc(columns["last_activity_at"]) < at
        ):
            columns["last_activity_at"] = at
        channel = (event.data or {}).get("channel")
        column = SUPPRESSING.get(event.type)
        if event.type in CHANNEL_CLOSING and channel in ADDRESS_OF:
            # only that channel, for the lead's address on it, as `record_event` does
            reason = f"{event.type} at {at.isoformat()}"
            close_lead_channel(self.session, state.row, channel, reason, at)
        elif column is not None and columns[column] is None:
            columns[column] = at
            reason = columns["suppressed_reason"] or f"{event.type} at {at.isoformat()}"
            columns["suppressed_reason"] = reason
        delivery = self._deliveries.get(event.delivery_id or 0)
        name = event.name if event.type == "custom" and event.name else event.type
        item = Event(name=name, at=at, delivery=delivery[1] if delivery else None, link=event.link)
        key = (at, 1 << 62 | index)  # after every stored event of the same moment
        bisect.insort(state.events, (at, key[1], item), key=lambda e: (e[0], e[1]))
        now = max(self.now, at)
        after = state.returned_at
        events = [e for t, _, e in state.events if t <= now and (after is None or t > after)]
        view = view_of(_Row(state.row, columns), state.tags)
        scores, due = self._scored(state, view, events, now)
        state.scores = {
            "fit": round(scores.fit),
            "interest": scores.interest,
            "grade": scores.grade,
            "rescore_at": next_decay(self.model, events, now),
        }
        state.slow = state.slow or due

    def _scored(
        self, state: _Lead, view: LeadView, events: list[Event], now: datetime
    ) -> tuple[Scores, bool]:
        """The lead's scores after the event and whether the MQL rule holds, as
        `compute_scores` and `mql_due` give them, with the model compiled once."""
        compiled = self.compiled
        if compiled is None:  # without a scoring model every score is zero, no MQL rule
            return Scores(), False
        # fit reads only the profile and the moment: the same for the lead's next event
        # unless that event changed a column (activity, suppression) or the moment
        fit_key = (*state.columns.values(), now)
        if state.fit is None or state.fit[0] != fit_key:
            state.fit = (fit_key, compiled.fit(view, now))
        scores = compiled.scores(view, events, now, fit=state.fit[1])
        return scores, compiled.mql_due(replace(view, scores=scores), scores, events, now)

    def _insert(
        self,
        batch: Sequence[EventInput],
        leads: Sequence[int],
        at_of: Sequence[datetime],
        fast: Sequence[int],
    ) -> None:
        rows = [
            {
                "lead_id": leads[i],
                "type": batch[i].type,
                "name": batch[i].name,
                "delivery_id": batch[i].delivery_id,
                "link": batch[i].link,
                "occurred_at": at_of[i],
                "data": dict(batch[i].data or {}),
                "triggers_checked_at": None,
            }
            for i in fast
        ]
        if rows:
            self.session.connection().execute(insert(EVENTS), rows)

    def _update(self, states: dict[int, _Lead]) -> None:
        touched = datetime.now(UTC)
        rows = [
            {"b_id": i, **{f"b_{k}": v for k, v in {**s.columns, **s.scores}.items()}}
            for i, s in states.items()
            if not s.slow
        ]
        if not rows:
            return
        names = [*STATE, "fit", "interest", "grade", "rescore_at"]
        values: dict[str, Any] = {k: bindparam(f"b_{k}") for k in names}
        statement = (
            update(LEADS)
            .where(LEADS.c.id == bindparam("b_id"))
            .values({**values, "updated_at": touched})
        )
        self.session.connection().execute(statement, rows)

    def _wake(self, lead_ids: list[int]) -> None:
        if not lead_ids:
            return
        waiting = self.session.execute(
            select(
                Enrollment.id, Enrollment.lead_id, Enrollment.waiting_for, Enrollment.next_run_at
            )
            .where(among(self.session, Enrollment.lead_id, lead_ids), Enrollment.state == WAITING)
            .order_by(Enrollment.id)
        ).all()
        order = {lead: n for n, lead in enumerate(lead_ids)}
        due: list[int] = []
        for r in sorted(waiting, key=lambda r: (order[r.lead_id], r.id)):
            if not r.waiting_for:
                continue
            if r.next_run_at is None or utc(r.next_run_at) > self.now:
                due.append(r.id)
            self._wake_id(r.id)
        if due:
            self.session.connection().execute(
                update(ENROLLMENTS).where(ENROLLMENTS.c.id.in_(due)).values(next_run_at=self.now)
            )

    def _wake_id(self, enrollment_id: int) -> None:
        if enrollment_id not in self._woken:
            self._woken.add(enrollment_id)
            self.woken.append(enrollment_id)

    def _record_one(self, event: EventInput, lead_id: int, at: datetime) -> None:
        """The row-by-row path (`record_event`), for an event after which a lead is an MQL."""
        self.session.flush()
        self.session.expire_all()  # the batch's Core writes are newer than what the ORM holds
        record_event(
            self.session,
            lead_id,
            event.type,
            event.name,
            at,
            now=max(self.now, at),
            link=event.link,
            delivery_id=event.delivery_id,
            data=event.data,
            rules=self.rules,
        )
        for enrollment_id in wake_waiting(self.session, lead_id, self.now):
            self._wake_id(enrollment_id)


class _Row:
    """A stored lead row with the columns the batch changed, read as `view_of` reads a lead."""

    def __init__(self, row: Any, columns: dict[str, Any]) -> None:
        self._row = row
        self._columns = columns

    def __getattr__(self, name: str) -> Any:
        if name in self._columns:
            return self._columns[name]
        return getattr(self._row, name)


def _leads_named(session: Session, refs: Sequence[dict[str, Any]]) -> dict[tuple[str, Any], int]:
    """(field, value) → lead id for every value the events name; ids follow merges."""
    wanted: dict[str, set[Any]] = defaultdict(set)
    for given in refs:
        for key, value in given.items():
            wanted[key].add(value)
    columns = {"id": Lead.id, "email": Lead.email, "phone": Lead.phone}
    columns["messaging_id"] = Lead.messaging_id
    clauses = [
        among(session, Lead.id, sorted(v))
        if k == "id"
        else among_texts(session, cast(Any, columns[k]), sorted(v))
        for k, v in wanted.items()
        if v
    ]
    found: dict[tuple[str, Any], int] = {}
    if not clauses:
        return found
    query = select(Lead.id, Lead.email, Lead.phone, Lead.messaging_id).where(or_(*clauses))
    for row in session.execute(query):
        for key in ("id", "email", "phone", "messaging_id"):
            value = getattr(row, key)
            if value is not None and value in wanted.get(key, ()):
                found[(key, value)] = row.id
    missing = sorted(i for i in wanted.get("id", ()) if ("id", i) not in found)
    if missing:
        merges = select(LeadMerge.merged_id, LeadMerge.into_id).where(
            among(session, LeadMerge.merged_id, missing)
        )
        for merged_id, into_id in session.execute(merges):
            found[("id", merged_id)] = into_id
    return found


def _deliveries(session: Session, ids: list[int]) -> dict[int, tuple[int, DeliveryKey | None]]:
    """Delivery id → (its lead, its key as the core sees it)."""
    if not ids:
        return {}
    query = select(
        Delivery.id, Delivery.lead_id, Delivery.enrollment_id, Delivery.step_id, Delivery.iteration
    ).where(among(session, Delivery.id, ids))
    return {
        r.id: (
            r.lead_id,
            None
            if r.enrollment_id is None
            else DeliveryKey(r.enrollment_id, r.step_id, r.iteration),
        )
        for r in session.execute(query)
    }
