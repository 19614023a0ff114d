"""How many SQL statements a page takes: the same for a short and a long story (no N+1)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from nurture.models import Cost, Delivery, Event, LeadNote, Tag
from nurture.store import record_event
from nurture.store.lifecycle import transition
from tests.console.conftest import T, World, sign_in
from tests.handoff.test_handoff_store import RULES, east_lead, qualify

pytestmark = pytest.mark.asyncio


async def queries_of(world: World, client: httpx.AsyncClient, path: str) -> int:
    """The statements the database ran while `client` got `path` (a 200)."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(world.engine, "before_cursor_execute", count)
    try:
        response = await client.get(path)
    finally:
        event.remove(world.engine, "before_cursor_execute", count)
    assert response.status_code == 200, response.text
    return len([q for q in seen if not q.lstrip().upper().startswith(("BEGIN", "SAVEPOINT"))])


def more_mqls(world: World, n: int) -> None:
    with world.sessions() as session:
        for i in range(n):
            lead = east_lead(session, f"more{i}@corp.com")
            assert qualify(session, lead, RULES, T) is not None
        session.commit()


def longer_story(world: World, email: str, n: int) -> None:
    """`n` more events, tags and notes for the lead."""
    lead_id = world.leads[email].id
    with world.sessions() as session:
        for i in range(n):
            record_event(session, lead_id, "custom", f"page_{i}", T, rules=RULES)
            session.add(Tag(lead_id=lead_id, tag=f"t{i}"))
            session.add(LeadNote(lead_id=lead_id, author="mia@t.io", text=f"note {i}", at=T))
        session.commit()


async def test_the_lead_page_takes_the_same_queries_for_a_long_story(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, "mia@t.io")
    path = f"/console/leads/{world.leads['ada@corp.com'].id}"
    short = await queries_of(world, client, path)
    longer_story(world, "ada@corp.com", 15)

    long = await queries_of(world, client, path)

    assert short == long
    with world.sessions() as session:
        assert session.query(Event).count() > 15 and session.query(Delivery).count() == 0


def more_months(world: World, n: int) -> None:
    """`n` more MQLs of new sources, each reaching SQL a month later, with a cost."""
    with world.sessions() as session:
        for i in range(n):
            lead = east_lead(session, f"month{i}@corp.com")
            lead.source = f"source {i}"
            assert qualify(session, lead, RULES, T) is not None
            at = T + timedelta(days=31 * (i + 1))
            transition(session, lead, "sql", "test", at)
            month = date(at.year, at.month, 1)
            session.add(Cost(kind="source", name=lead.source, month=month, amount=1, imported_at=T))
        session.commit()


@pytest.mark.parametrize("by", ["", "source", "campaign", "owner"])
async def test_the_funnel_page_takes_the_same_queries_for_more_months_and_names(
    client: httpx.AsyncClient, world: World, by: str
) -> None:
    await sign_in(client, "mia@t.io")
    path = f"/console/funnel?by={by}"
    short = await queries_of(world, client, path)
    more_months(world, 5)

    long = await queries_of(world, client, path)

    assert short == long
    page = (await client.get(path)).text
    assert ("<h3>source 4</h3>" in page) == (by == "source")
    if by != "campaign":  # these leads are in no campaign
        assert "<title>2026-08 sql: 1</title>" in page


async def test_the_funnel_since_a_date_takes_the_queries_of_all_leads(
    client: httpx.AsyncClient, world: World
) -> None:
    """All leads are every lead, filtered by nothing; since a date, each query is filtered by
    the leads created since: the same statements either way, whatever the months."""
    await sign_in(client, "mia@t.io")
    everyone = await queries_of(world, client, "/console/funnel")
    more_months(world, 3)

    since = await queries_of(world, client, "/console/funnel?since=2026-01-01")

    assert since == everyone
    page = (await client.get("/console/funnel?since=2099-01-01")).text
    assert "0 leads · 0 returned by sales" in page
