"""Paging a timeline back by its place shows every entry once, in the whole timeline's
order, whatever the page size: also where a page ends among entries of several kinds, or
of one kind, at the same time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.handoff.answers import accept
from nurture.handoff.timeline import Cursor, Entry, timeline
from nurture.models import LeadNote, LifecycleTransition, MqlRecord
from nurture.store import record_event
from nurture.store.lifecycle import transition
from tests.handoff.test_handoff_store import HOUR, MINUTE, RULES, T, east_lead, qualify


def crowded(session: Session) -> int:
    """A lead whose story has events, a note, an acceptance, stage changes and an assignment
    at the same minutes, and several events at each minute; its id."""
    lead = east_lead(session, "ada@corp.com")
    assert qualify(session, lead, RULES, T) is not None  # 3 events, stage, assignment at T
    assert lead.owner is not None
    accept(session, lead, lead.owner, T)
    for i in range(14):
        at = T + (i // 3) * MINUTE
        record_event(session, lead.id, "opened", None, at, rules=RULES)
        if i % 4 == 1:
            session.add(LeadNote(lead_id=lead.id, author="mia@t.io", text=f"note {i}", at=at))
    transition(session, lead, "sql", "sales", T + 2 * MINUTE)
    session.flush()
    return lead.id


def whole(session: Session, lead_id: int, limit: int | None, before: Cursor | None) -> Any:
    steps, mqls, notes = (
        list(session.scalars(select(m).where(m.lead_id == lead_id)))
        for m in (LifecycleTransition, MqlRecord, LeadNote)
    )
    return timeline(session, lead_id, steps, mqls, notes, limit=limit, before=before)


@pytest.mark.parametrize("limit", range(1, 10))
def test_pages_back_show_every_entry_once_in_order(session: Session, limit: int) -> None:
    lead_id = crowded(session)
    everything = whole(session, lead_id, None, None)
    assert everything.older is None
    kinds = {entry.kind for entry in everything.entries}
    assert kinds == {"event", "note", "accepted", "stage", "assignment"}

    shown: list[Entry] = []
    before = None
    for _ in range(len(everything.entries) + 1):
        page = whole(session, lead_id, limit, before)
        assert 0 < len(page.entries) <= limit
        shown += page.entries
        if page.older is None:
            break
        before = Cursor.parse(page.older.text())  # through the URL's text, as the page does

    assert shown == everything.entries
    assert [e.cursor for e in shown] == sorted((e.cursor for e in shown), reverse=True)
    assert shown[0].at >= T + 4 * MINUTE and shown[-1].at == T


def test_a_place_after_the_newest_entry_shows_from_the_newest(session: Session) -> None:
    lead_id = crowded(session)
    later = Cursor(T + HOUR, 0, 0)

    page = whole(session, lead_id, 3, later)

    assert page.entries == whole(session, lead_id, None, None).entries[:3]
    assert whole(session, lead_id, 3, Cursor(T - timedelta(seconds=1), 5, 10**9)).entries == []
