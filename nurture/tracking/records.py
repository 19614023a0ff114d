"""What each tracking request writes, inside the caller's transaction.

Every function takes the session, ``now`` and an `Effects` that collects what
to do after the commit (the enrollments to enqueue, the leads to enroll); the
app commits, then runs the hooks, so the runtime never sees uncommitted rows.
Every recorded event also wakes the lead's enrollments that wait for an event
(`nurture.store.wake`): the engine decides whether it is the awaited one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.models import Delivery, Lead
from nurture.store.cleaning import CleanLead
from nurture.store.leads import resolve_lead_id, store_lead
from nurture.store.scoring import Rules, record_event
from nurture.store.wake import wake_waiting
from nurture.tracked_links import TrackedLink
from nurture.tracking.links import stored_link
from nurture.tracking.schema import EventInput, Invalid, LeadRef, Problem


def _nothing() -> None:
    """The default progress callback."""


@dataclass(slots=True)
class Effects:
    """What the hooks get after the commit."""

    woken: list[int] = field(default_factory=list)
    """Enrollment ids made due now, for ``on_wake``."""
    leads: dict[int, bool] = field(default_factory=dict)
    """Created (True) or updated (False) lead ids, for ``on_lead``."""

    def wake(self, session: Session, lead_id: int, now: datetime) -> None:
        self.woken.extend(i for i in wake_waiting(session, lead_id, now) if i not in self.woken)


@dataclass(frozen=True, slots=True)
class LeadsOutcome:
    """The response of ``POST /api/leads``."""

    created: list[int]
    updated: list[int]
    skipped: list[dict[str, object]]
    merged: list[dict[str, int]]
    ids: list[int | None]
    """The lead of each item, None for a skipped one."""

    def to_json(self) -> dict[str, object]:
        return {
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "merged": self.merged,
            "ids": self.ids,
        }


# ---------------------------------------------------------------- opens and clicks


def record_open(session: Session, delivery_id: int, now: datetime, effects: Effects) -> bool:
    """Record an ``opened`` event of the delivery's lead; False for an unknown delivery."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return False
    record_event(session, delivery.lead_id, "opened", None, now, delivery_id=delivery.id)
    effects.wake(session, delivery.lead_id, now)
    return True


def click_target(session: Session, delivery_id: int, index: int) -> TrackedLink | None:
    """The stored link a click token names, or None."""
    delivery = session.get(Delivery, delivery_id)
    return None if delivery is None else stored_link(delivery.links, index)


def record_click(
    session: Session, delivery_id: int, index: int, now: datetime, effects: Effects
) -> TrackedLink | None:
    """Record a ``clicked`` event and return the link to redirect to; None records nothing.

    The event's ``link`` is the link's name when it has one (what ``clicked
    "download"`` matches), else its URL; ``data`` holds the URL, the name and
    the index either way.
    """
    delivery = session.get(Delivery, delivery_id)
    link = None if delivery is None else stored_link(delivery.links, index)
    if delivery is None or link is None:
        return None
    data = {"url": link.url, "name": link.name, "index": link.index}
    record_event(
        session,
        delivery.lead_id,
        "clicked",
        None,
        now,
        link=link.name or link.url,
        delivery_id=delivery.id,
        data=data,
    )
    effects.wake(session, delivery.lead_id, now)
    return link


# ---------------------------------------------------------------- unsubscribing


def unsubscribe_lead(
    session: Session, lead_id: int, delivery_id: int | None, *, lock: bool = False
) -> tuple[Lead | None, Delivery | None]:
    """The lead an unsubscribe token names (following merges) and its delivery, if they exist.

    `lock` takes the lead's row lock, so two unsubscribes at once record one event.
    """
    delivery = None if delivery_id is None else session.get(Delivery, delivery_id)
    target = resolve_lead_id(session, lead_id)
    if target is None and delivery is not None:
        target = delivery.lead_id  # the token's lead is gone; the message it came in is not
    lead = None if target is None else session.get(Lead, target, with_for_update=lock or None)
    return lead, delivery if delivery is not None and lead is not None else None


def unsubscribe(
    session: Session,
    lead_id: int,
    delivery_id: int | None,
    via: str,
    now: datetime,
    effects: Effects,
) -> Lead | None:
    """Record ``unsubscribed`` (which suppresses the lead), once; None for an unknown lead."""
    lead, delivery = unsubscribe_lead(session, lead_id, delivery_id, lock=True)
    if lead is None or lead.unsubscribed_at is not None:
        return lead
    record_event(
        session,
        lead.id,
        "unsubscribed",
        None,
        now,
        delivery_id=None if delivery is None else delivery.id,
        data={"via": via},
    )
    effects.wake(session, lead.id, now)
    return lead


# ---------------------------------------------------------------- the API


def record_events(
    session: Session,
    events: list[EventInput],
    now: datetime,
    effects: Effects,
    *,
    progress: Callable[[], None] = _nothing,
) -> list[int]:
    """Record checked events, all or none; raises `Invalid` naming unknown leads or deliveries.

    `progress` is called after each event (a file's progress bar)."""
    leads = _resolve(session, events)
    rules = Rules.active(session)
    ids: list[int] = []
    for event, lead_id in zip(events, leads, strict=True):
        at = event.at or now
        recorded = record_event(
            session,
            lead_id,
            event.type,
            event.name,
            at,
            now=max(now, at),
            link=event.link,
            delivery_id=event.delivery_id,
            data=event.data,
            rules=rules,
        )
        ids.append(recorded.event.id)
        effects.wake(session, lead_id, now)
        progress()
    return ids


def _resolve(session: Session, events: list[EventInput]) -> list[int]:
    problems: list[Problem] = []
    leads: list[int] = []
    for event in events:
        lead_id = _find(session, event.path, event.lead, problems)
        if lead_id is not None and event.delivery_id is not None:
            delivery = session.get(Delivery, event.delivery_id)
            if delivery is None or delivery.lead_id != lead_id:
                where = f"{event.path}.delivery_id"
                problems.append(Problem(where, f"no delivery {event.delivery_id} of this lead"))
        leads.append(lead_id or 0)
    if problems:
        raise Invalid(problems)
    return leads


def _find(session: Session, path: str, ref: LeadRef, problems: list[Problem]) -> int | None:
    found: dict[str, int] = {}
    for key, value in ref.given().items():
        if key == "id":
            lead_id = resolve_lead_id(session, int(value))
        else:
            lead_id = session.scalar(select(Lead.id).where(getattr(Lead, key) == value))
        if lead_id is None:
            problems.append(Problem(f"{path}.lead.{key}", f"no lead with {key} {value}"))
            return None
        found[key] = lead_id
    if len(set(found.values())) > 1:
        names = " and ".join(found)
        problems.append(Problem(f"{path}.lead", f"{names} name different leads"))
        return None
    return next(iter(found.values()))


def store_leads(
    session: Session,
    leads: list[CleanLead],
    now: datetime,
    effects: Effects,
    *,
    progress: Callable[[], None] = _nothing,
) -> LeadsOutcome:
    """Store prepared leads in order; the ones cleaning rejects are skipped with their reason.

    `progress` is called after each lead (a file's progress bar)."""
    ids: list[int | None] = []
    skipped: list[dict[str, object]] = []
    created: dict[int, bool] = {}
    merged: list[dict[str, int]] = []
    for index, clean in enumerate(leads):
        progress()
        if clean.skip is not None:
            skipped.append({"index": index, "reason": clean.skip})
            ids.append(None)
            continue
        stored = store_lead(session, clean, now)
        ids.append(stored.lead.id)
        created.setdefault(stored.lead.id, stored.created)
        for gone in stored.merged:
            merged.append({"from": gone, "into": stored.lead.id})
            created.pop(gone, None)  # a lead made earlier in this request, merged away since
    into = {m["from"]: m["into"] for m in merged}
    ids = [_follow(into, i) for i in ids]
    effects.leads.update(created)
    return LeadsOutcome(
        created=[i for i, new in created.items() if new],
        updated=[i for i, new in created.items() if not new],
        skipped=skipped,
        merged=merged,
        ids=ids,
    )


def _follow(gone: dict[int, int], lead_id: int | None) -> int | None:
    while lead_id is not None and lead_id in gone:
        lead_id = gone[lead_id]
    return lead_id
