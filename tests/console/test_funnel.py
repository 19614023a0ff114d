"""The funnel page: the numbers of `nurture report funnel`, as a page and as the same JSON."""

from __future__ import annotations

import json

import httpx
import pytest

from nurture.reports import funnel
from tests.console.conftest import World, form, sign_in

pytestmark = pytest.mark.asyncio


async def test_the_funnel_shows_the_reports_numbers(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, world.owner("ada@corp.com"))
    inbox = (await client.get("/console/inbox")).text
    lead = world.leads["ada@corp.com"].id
    await form(client, inbox, f"/console/leads/{lead}/stage", stage="won", amount="5000")
    client.cookies.clear()
    await sign_in(client, "mia@t.io")

    page = await client.get("/console/funnel")
    as_json = await client.get("/console/funnel.json")

    with world.sessions() as session:
        expected = json.loads(json.dumps(funnel(session, world.clock.now()).to_json()))
    assert as_json.json() == expected
    text = page.text
    assert "<tr><td>mql</td><td>2</td>" in text and "<tr><td>customer</td><td>1</td>" in text
    assert "2 leads · 0 returned by sales" in text
    assert "won 5,000.00" in text
    assert f"<th>{world.owner('ada@corp.com')}</th>" in text  # by owner
    assert '<svg role="img" aria-label="Leads that reached each stage"' in text


async def test_since_filters_and_a_bad_date_is_400(client: httpx.AsyncClient, world: World) -> None:
    await sign_in(client, "ann@t.io")
    later = await client.get("/console/funnel.json", params={"since": "2099-01-01"})
    assert later.json()["leads"] == 0
    bad = await client.get("/console/funnel", params={"since": "soon"})
    assert (bad.status_code, "Since &#39;soon&#39; is not a date" in bad.text) == (400, True)


async def test_sales_have_no_funnel(client: httpx.AsyncClient, world: World) -> None:
    await sign_in(client, world.owner("ada@corp.com"))
    assert (await client.get("/console/funnel")).status_code == 403
    assert (await client.get("/console/funnel.json")).status_code == 403
