"""The sales inbox: my open MQLs with the SLA countdown, accept and return in place, my
accepted leads by stage with stage updates; what each role sees and may do."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from nurture.models import LifecycleTransition, MqlRecord
from tests.console.conftest import World, form, sign_in

pytestmark = pytest.mark.asyncio

ADA, LI = "ada@corp.com", "li@corp.cn"


async def inbox_of(client: httpx.AsyncClient, world: World, email: str) -> str:
    await sign_in(client, world.owner(email))
    page = await client.get("/console/inbox")
    assert page.status_code == 200
    return page.text


def mql(world: World, email: str) -> MqlRecord:
    with world.sessions() as session:
        lead_id = world.leads[email].id
        found = session.scalars(select(MqlRecord).where(MqlRecord.lead_id == lead_id)).one()
        session.expunge(found)
        return found


async def test_a_rep_sees_their_own_mqls_with_the_time_left(
    client: httpx.AsyncClient, world: World
) -> None:
    assert world.owner(ADA) != world.owner(LI)  # round robin gave one to each

    page = await inbox_of(client, world, ADA)

    assert "<h1>My MQLs</h1>" in page
    assert "Ada" in page and "Analytical Engines" in page
    assert "Li</a>" not in page and "华夏" not in page  # the other rep's lead
    assert "Accept by 2026-03-03 09:00 UTC" in page
    assert "23 h 0 min left" in page  # server-rendered; the page's script ticks it
    assert 'data-due="2026-03-03T09:00:00+00:00"' in page
    assert f'action="/console/leads/{world.leads[ADA].id}/accept"' in page
    for reason in ("not a fit", "no budget", "wrong contact"):
        assert f'<option value="{reason}">' in page


async def test_an_overdue_mql_says_by_how_much(client: httpx.AsyncClient, world: World) -> None:
    world.clock.advance(__import__("datetime").timedelta(hours=30))
    page = await inbox_of(client, world, ADA)
    assert "overdue by 7 h 0 min" in page


async def test_marketers_and_analysts_see_every_mql_read_only(
    client: httpx.AsyncClient, world: World
) -> None:
    for email in ("mia@t.io", "ann@t.io"):
        client.cookies.clear()
        await sign_in(client, email)
        page = (await client.get("/console/inbox")).text
        assert "<h1>Open MQLs</h1>" in page
        assert "Ada" in page and "华夏" in page
        assert f"Owner: {world.owner(ADA)}" in page and f"Owner: {world.owner(LI)}" in page
        assert "/accept" not in page and "/return" not in page


async def test_accepting_in_place_moves_the_lead_to_my_accepted_leads(
    client: httpx.AsyncClient, world: World
) -> None:
    page = await inbox_of(client, world, ADA)
    lead_id = world.leads[ADA].id

    done = await form(client, page, f"/console/leads/{lead_id}/accept", back="inbox")

    assert (done.status_code, done.headers["location"]) == (303, "/console/inbox")
    assert mql(world, ADA).accepted_at == world.clock.now()
    after = (await client.get("/console/inbox")).text
    assert f"Lead {lead_id} accepted by {world.owner(ADA)}." in after
    assert "No MQLs waiting to be accepted." in after
    assert "accepted MQL (1)" in after
    assert f'action="/console/leads/{lead_id}/stage"' in after
    # the line is shown once
    assert "accepted by" not in (await client.get("/console/inbox")).text


async def test_a_return_needs_a_reason_and_keeps_the_one_given(
    client: httpx.AsyncClient, world: World
) -> None:
    page = await inbox_of(client, world, ADA)
    action = f"/console/leads/{world.leads[ADA].id}/return"

    for fields in ({}, {"reason": "other"}, {"reason": "", "other": "  "}):
        refused = await form(client, page, action, back="inbox", **fields)
        assert refused.status_code == 400
        assert "Returning a lead needs a reason" in refused.text
        assert mql(world, ADA).returned_at is None

    done = await form(client, page, action, back="inbox", reason="no budget", other="Q3 maybe")

    assert done.status_code == 303
    returned = mql(world, ADA)
    assert (returned.return_reason, returned.returned_at) == (
        "no budget: Q3 maybe",
        world.clock.now(),
    )
    assert world.lead(ADA).owner is None
    after = (await client.get("/console/inbox")).text
    assert "returned to nurture by" in after and "Ada</a>" not in after


async def test_stages_move_forward_with_amounts_and_lost_needs_a_reason(
    client: httpx.AsyncClient, world: World
) -> None:
    page = await inbox_of(client, world, ADA)
    lead_id = world.leads[ADA].id
    action = f"/console/leads/{lead_id}/stage"
    await form(client, page, f"/console/leads/{lead_id}/accept")

    assert (await form(client, page, action, stage="sql")).status_code == 303
    assert (
        await form(client, page, action, stage="opportunity", amount="12,500")
    ).status_code == 303
    page = (await client.get("/console/inbox")).text
    assert "opportunity (1)" in page

    backwards = await form(client, page, action, stage="sql")
    assert backwards.status_code == 409
    assert "opportunity" in backwards.text and 'class="problem"' in backwards.text

    bad = await form(client, page, action, stage="won", amount="lots")
    assert (bad.status_code, "The amount &#39;lots&#39; is not a number" in bad.text) == (409, True)
    lost = await form(client, page, action, stage="lost")
    assert (lost.status_code, "A lost deal needs a reason." in lost.text) == (409, True)
    assert world.lead(ADA).stage == "opportunity"  # nothing changed by the refusals

    assert (await form(client, page, action, stage="won", amount="30000")).status_code == 303
    with world.sessions() as session:
        won = session.scalars(
            select(LifecycleTransition).where(LifecycleTransition.to_stage == "customer")
        ).one()
        assert (won.amount, won.by) == (Decimal("30000.00"), world.owner(ADA))
    assert "won (1)" in (await client.get("/console/inbox")).text


async def test_a_rep_cannot_answer_for_another_reps_lead(
    client: httpx.AsyncClient, world: World
) -> None:
    page = await inbox_of(client, world, ADA)
    other = world.leads[LI].id

    for action in ("accept", "return", "stage"):
        response = await form(
            client, page, f"/console/leads/{other}/{action}", reason="no budget", stage="sql"
        )
        assert response.status_code == 404
    assert mql(world, LI).accepted_at is None and mql(world, LI).returned_at is None


async def test_a_marketer_cannot_answer_for_anybody(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, "mia@t.io")
    page = (await client.get("/console/inbox")).text

    response = await form(client, page, f"/console/leads/{world.leads[ADA].id}/accept")

    assert response.status_code == 403
    assert "Only the lead&#39;s owner answers for it." in response.text
    assert mql(world, ADA).accepted_at is None


async def test_the_inbox_takes_the_same_queries_for_two_mqls_as_for_twelve(
    client: httpx.AsyncClient, world: World
) -> None:
    from tests.console.test_queries import more_mqls, queries_of

    await sign_in(client, "mia@t.io")
    few = await queries_of(world, client, "/console/inbox")
    more_mqls(world, 10)
    many = await queries_of(world, client, "/console/inbox")

    assert few == many
    assert few <= 5  # the user, the routing's reasons, the open MQLs, the accepted leads
