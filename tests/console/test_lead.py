"""The lead page: the 360 view (profile, account, tags, scores with their rules, MQLs, a
timeline of every touch, event, stage change and assignment), answers from it, who may
open it, and lead data shown as text, never as markup."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from nurture.models import Account, Lead, Tag
from nurture.store import record_event
from tests.console.conftest import T, World, form, sign_in
from tests.handoff.test_handoff_store import RULES

pytestmark = pytest.mark.asyncio

ADA, LI = "ada@corp.com", "li@corp.cn"


def path(world: World, email: str) -> str:
    return f"/console/leads/{world.leads[email].id}"


async def test_the_lead_page_shows_the_whole_story(client: httpx.AsyncClient, world: World) -> None:
    lead_id = world.leads[ADA].id
    with world.sessions() as session:
        account = Account(
            name="Analytical Engines Ltd",
            key="analytical engines",
            owner="zoe@t.io",
            status="opportunity",
            imported_at=T,
        )
        session.add(account)
        session.flush()
        session.get(Lead, lead_id).account_id = account.id  # type: ignore[union-attr]
        session.add(Tag(lead_id=lead_id, tag="interest:product"))
        record_event(
            session,
            lead_id,
            "clicked",
            None,
            T + timedelta(minutes=5),
            link="https://corp.example/pricing",
            rules=RULES,
        )
        session.commit()
    await sign_in(client, world.owner(ADA))

    page = (await client.get(path(world, ADA))).text

    assert "<h1>Ada</h1>" in page
    assert "<th>title</th><td>VP Marketing</td>" in page
    assert "<th>industry</th><td>saas</td>" in page
    assert "Analytical Engines Ltd" in page and "opportunity" in page and "zoe@t.io" in page
    assert "<span>interest:product</span>" in page
    assert "grade <strong>A</strong>" in page
    # the rules behind the points
    assert "<td>fit</td><td>+20 when lead.industry in [&#34;saas&#34;" in page
    assert "<td>+20 per event &#34;webinar_attended&#34; ×3</td><td>+60</td>" in page
    assert (
        f"owner {world.owner(ADA)} (team east);" in page and "waiting, due 2026-03-03 09:00" in page
    )
    for kind in ("event", "stage", "assignment"):
        assert f'<td class="kind">{kind}</td>' in page
    assert "clicked https://corp.example/pricing" in page
    assert "round robin" in page  # the assignment's reason
    assert f'action="/console/leads/{lead_id}/accept"' in page


async def test_accepting_from_the_lead_page_comes_back_to_it(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, world.owner(ADA))
    page = (await client.get(path(world, ADA))).text

    done = await form(client, page, f"{path(world, ADA)}/accept", back="lead")

    assert done.headers["location"] == path(world, ADA)
    after = (await client.get(path(world, ADA))).text
    assert "accepted by" in after and f'action="{path(world, ADA)}/stage"' in after
    assert f'action="{path(world, ADA)}/accept"' not in after
    assert '<td class="kind">accepted</td>' in after


async def test_a_rep_guessing_other_leads_ids_finds_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, world.owner(ADA))
    mine = world.leads[ADA].id
    for lead_id in (world.leads[LI].id, 999, mine + 100):
        response = await client.get(f"/console/leads/{lead_id}")
        assert response.status_code == 404
        assert "There is no such lead, or it is not yours." in response.text
        assert "华夏" not in response.text
    assert (await client.get(f"/console/leads/{mine}")).status_code == 200
    assert (await client.get("/console/leads/not-a-number")).status_code == 404


async def test_other_roles_open_any_lead_without_answer_forms(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, "ann@t.io")
    page = await client.get(path(world, LI))
    assert page.status_code == 200 and "华夏" in page.text
    assert "/accept" not in page.text and "/stage" not in page.text


async def test_lead_data_is_shown_as_text_never_as_markup(
    client: httpx.AsyncClient, world: World
) -> None:
    evil = "<script>alert(1)</script>"
    with world.sessions() as session:
        lead = session.get(Lead, world.leads[ADA].id)
        assert lead is not None
        lead.first_name, lead.company = evil, '"><img src=x onerror=alert(2)>'
        lead.attributes = {**lead.attributes, "note": evil}
        session.add(Tag(lead_id=lead.id, tag=evil))
        session.commit()
    await sign_in(client, world.owner(ADA))

    for page in (
        (await client.get(path(world, ADA))).text,
        (await client.get("/console/inbox")).text,
    ):
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in page


async def test_the_lead_page_of_a_returned_lead_shows_the_return(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, world.owner(ADA))
    page = (await client.get(path(world, ADA))).text
    await form(client, page, f"{path(world, ADA)}/return", back="lead", reason="not a fit")

    client.cookies.clear()
    await sign_in(client, "mia@t.io")
    after = (await client.get(path(world, ADA))).text

    assert "returned 2026-03-02 10:00: not a fit" in after
    assert "returned by" in after  # the stage change in the timeline
    with world.sessions() as session:
        assert session.scalars(select(Lead.stage).where(Lead.email == ADA)).one() == "returned"
