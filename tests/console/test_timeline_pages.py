"""The lead page's timeline a page at a time, newest first: "Show older" pages back by a
place in it, every entry shows once (also entries of several kinds at the same time),
the place in the URL opens no other rep's lead, and a wrong one is a 400 saying why.
The points' rules are explained as `nurture leads show` explains them, read from the
events once and kept until an event, the return or a decay period changes them."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from markupsafe import escape
from sqlalchemy import event

from nurture.console.views import TIMELINE
from nurture.handoff.story import story
from nurture.handoff.timeline import Cursor
from nurture.models import Lead, LeadNote
from nurture.store import record_event
from nurture.store.lifecycle import transition
from tests.console.conftest import NOW, T, World, sign_in
from tests.console.test_touch import with_touches
from tests.handoff.test_handoff_store import RULES

pytestmark = pytest.mark.asyncio

ADA, LI = "ada@corp.com", "li@corp.cn"
ROW = re.compile(r'<tr><td>([^<]*)</td><td class="kind">([^<]*)</td><td>(.*?)</td></tr>')
OLDER = re.compile(r'href="(/console/leads/\d+\?before=[^"]+)" rel="next">Show older<')


def rows(page: str) -> list[tuple[str, str, str]]:
    """The timeline's rows on `page` as (time, kind, words), as a reader sees them."""
    timeline = page.split("<h2>Timeline</h2>", 1)[1]
    return [(at, kind, html.unescape(what)) for at, kind, what in ROW.findall(timeline)]


def crowded_story(world: World, email: str, n: int) -> None:
    """`n` events, three at each minute, with a note and a stage change at some of the
    same minutes: entries of several kinds, and of one kind, at the same time."""
    lead_id = world.leads[email].id
    with world.sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        for i in range(n):
            at = T + timedelta(minutes=10 + i // 3)
            record_event(session, lead_id, "custom", f"page_{i}", at, now=NOW, rules=RULES)
            if i % 40 == 0:
                session.add(LeadNote(lead_id=lead_id, author="mia@t.io", text=f"note {i}", at=at))
        transition(session, lead, "sql", "sales", T + timedelta(minutes=10 + 50))
        session.commit()


async def test_show_older_pages_back_through_every_entry_once(
    client: httpx.AsyncClient, world: World
) -> None:
    crowded_story(world, ADA, 2 * TIMELINE + 13)
    await sign_in(client, "mia@t.io")
    lead_id = world.leads[ADA].id

    shown: list[tuple[str, str, str]] = []
    pages, url = 0, f"/console/leads/{lead_id}"
    while url:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        page_rows = rows(response.text)
        assert 0 < len(page_rows) <= TIMELINE
        shown += page_rows
        pages += 1
        older = OLDER.search(response.text)
        url = html.unescape(older.group(1)) if older else ""
        assert (pages > 1) == ('">Newest</a>' in response.text)

    with world.sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        whole = story(session, lead, NOW)["timeline"]  # as `nurture leads show` tells it
    told = [(e["at"][:16].replace("T", " "), e["kind"], e["what"]) for e in reversed(whole)]
    assert pages == 3 and shown == told
    assert len(told) > 2 * TIMELINE + 13  # the events, notes, stage changes, assignment
    assert {"event", "note", "stage", "assignment"} <= {kind for _, kind, _ in shown}


async def test_the_place_in_the_url_opens_no_other_reps_lead(
    client: httpx.AsyncClient, world: World
) -> None:
    crowded_story(world, LI, TIMELINE + 5)
    await sign_in(client, "mia@t.io")
    page = (await client.get(f"/console/leads/{world.leads[LI].id}")).text
    older = OLDER.search(page)
    assert older is not None
    client.cookies.clear()
    await sign_in(client, world.owner(ADA))
    assert world.owner(ADA) != world.owner(LI)

    for before in (html.unescape(older.group(1)).split("=", 1)[1], "nonsense"):
        response = await client.get(f"/console/leads/{world.leads[LI].id}?before={before}")
        assert response.status_code == 404
        assert "There is no such lead, or it is not yours." in response.text
        assert "华夏" not in response.text and "page_" not in response.text


@pytest.mark.parametrize(
    "before",
    [
        "nonsense",
        "1-9-1",  # no such kind
        "99999999999999999999-1-1",
        "999999999999999999-1-1",  # past the year 9999
        "1-1-99999999999",  # past any row id
        "",
    ],
)
async def test_a_wrong_place_is_a_400_saying_what(
    client: httpx.AsyncClient, world: World, before: str
) -> None:
    await sign_in(client, world.owner(ADA))

    response = await client.get(f"/console/leads/{world.leads[ADA].id}", params={"before": before})

    assert response.status_code == 400
    assert "?before=" in response.text and "is not a place in the timeline" in response.text
    assert "Traceback" not in response.text


def explained(world: World, email: str) -> list[str]:
    """The rules behind the lead's points as `nurture leads show` tells them (read afresh),
    as the lead page's rows."""
    with world.sessions() as session:
        lead = session.get(Lead, world.leads[email].id)
        assert lead is not None
        because = story(session, lead, world.clock.now())["scores"]["because"]
    return [
        f"<tr><td>{r['part']}</td><td>{escape(r['rule'])}"
        f"{' ×' + str(r['times']) if r['times'] > 1 else ''}</td><td>{r['points']:+g}</td></tr>"
        for r in because
    ]


async def test_the_rules_behind_the_points_are_read_once_and_kept_while_they_hold(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, "mia@t.io")
    path = f"/console/leads/{world.leads[ADA].id}"
    replays: list[str] = []

    def replay(*args: Any) -> None:  # every event of the lead, oldest first: a replay
        if "FROM events" in args[2] and "events.occurred_at, events.id" in args[2]:
            replays.append(args[2])

    async def shows(expected_replays: int) -> None:
        replays.clear()
        event.listen(world.engine, "before_cursor_execute", replay)
        try:
            page = (await client.get(path)).text
        finally:
            event.remove(world.engine, "before_cursor_execute", replay)
        rules = explained(world, ADA)
        assert rules and all(rule in page for rule in rules), (rules, page)
        assert len(replays) == expected_replays

    await shows(1)  # the first view reads the events
    await shows(0)  # kept
    with world.sessions() as session:
        record_event(session, world.leads[ADA].id, "clicked", None, NOW, rules=RULES)
        session.commit()
    await shows(1)  # a new event
    assert "+5 per click" in "".join(explained(world, ADA))
    await shows(0)
    world.clock.advance(timedelta(days=31))  # every event's points halve
    await shows(1)
    assert "<td>+30</td>" in "".join(explained(world, ADA))  # 3 webinars: 60 -> 30
    await shows(0)


async def test_a_future_event_counts_once_its_time_comes(
    client: httpx.AsyncClient, world: World
) -> None:
    with world.sessions() as session:
        record_event(
            session, world.leads[ADA].id, "clicked", None, NOW + timedelta(hours=2), rules=RULES
        )
        session.commit()
    await sign_in(client, "mia@t.io")
    path = f"/console/leads/{world.leads[ADA].id}"

    before = (await client.get(path)).text
    world.clock.advance(timedelta(hours=3))
    after = (await client.get(path)).text

    assert "per click" not in before
    assert "<td>+5 per click</td><td>+5</td>" in after
    assert all(rule in after for rule in explained(world, ADA))


async def test_a_place_reads_back_as_itself() -> None:
    place = Cursor(T + timedelta(microseconds=7), 4, 123)
    assert Cursor.parse(place.text()) == place
    assert Cursor.parse(Cursor(T, 0, 1).text()) < place


async def test_touches_at_the_time_of_other_entries_page_once_each(
    world: World, tmp_path: Path
) -> None:
    """Three touches sent at `T`, with the MQL's events, stage change and assignment."""
    with_touches(world, tmp_path)
    lead_id = world.leads[ADA].id
    with world.sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        everything = story(session, lead, NOW)["timeline"]
        for limit in range(1, 6):
            shown, before = [], None
            for _ in range(len(everything)):
                told = story(session, lead, NOW, limit=limit, before=before)
                shown = told["timeline"] + shown
                if told["older"] is None:
                    break
                before = Cursor.parse(told["older"])
            assert shown == everything, limit
    assert [e["kind"] for e in everything].count("touch") == 3
    assert {e["at"] for e in everything if e["kind"] == "touch"} == {T.isoformat()}
