"""The segments page: a --where expression or a deployed segment, counted and previewed,
its errors located, its leads streamed as CSV; not for sales."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pytest

from nurture.models import Lead, Tag
from nurture.runtime.deploying import deploy_sources
from tests.console.conftest import T, World, sign_in

pytestmark = pytest.mark.asyncio


@pytest.fixture
def tagged(world: World, tmp_path: Path) -> World:
    """Ada tagged "hot" (her company a would-be spreadsheet formula), and a deployed segment."""
    with world.sessions() as session:
        ada = session.get(Lead, world.leads["ada@corp.com"].id)
        assert ada is not None
        ada.company = '=HYPERLINK("x")'
        session.add(Tag(lead_id=ada.id, tag="hot"))
        session.commit()
    deploy_sources(
        world.sessions, {str(tmp_path / "s.nurture"): 'segment "Hot"\n  tagged "hot"\n'}, T
    )
    return world


async def test_an_expression_is_counted_and_previewed(
    client: httpx.AsyncClient, tagged: World
) -> None:
    await sign_in(client, "ann@t.io")

    page = await client.get("/console/segments", params={"where": 'tagged "hot"'})

    assert page.status_code == 200
    assert "<h2>1 lead</h2>" in page.text
    assert "<th>email</th>" in page.text and "<td>ada@corp.com</td>" in page.text
    assert "li@corp.cn" not in page.text
    assert 'href="/console/segments.csv?where=tagged+%22hot%22"' in page.text
    everyone = await client.get("/console/segments", params={"where": 'not tagged "nothing"'})
    assert "<h2>2 leads</h2>" in everyone.text


async def test_a_bad_expression_shows_its_located_errors(
    client: httpx.AsyncClient, tagged: World
) -> None:
    await sign_in(client, "mia@t.io")

    page = await client.get("/console/segments", params={"where": "lead.fit >>= 3"})

    assert page.status_code == 400
    assert "The expression has errors." in page.text
    assert "--where:1:" in page.text and "^" in page.text


async def test_a_deployed_segment_by_name_and_an_unknown_one(
    client: httpx.AsyncClient, tagged: World
) -> None:
    await sign_in(client, "admin@t.io")
    listing = (await client.get("/console/segments")).text
    assert 'href="/console/segments?segment=Hot"' in listing

    page = await client.get("/console/segments", params={"segment": "Hot"})
    assert "<h2>1 lead in “Hot”</h2>" in page.text
    missing = await client.get("/console/segments", params={"segment": "Cold"})
    assert missing.status_code == 400
    assert "No segment &#34;Cold&#34; is deployed; deployed segments: &#34;Hot&#34;" in missing.text


async def test_the_csv_is_the_export_streamed(client: httpx.AsyncClient, tagged: World) -> None:
    await sign_in(client, "ann@t.io")

    response = await client.get("/console/segments.csv", params={"segment": "Hot"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="Hot.csv"'
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["email"] for r in rows] == ["ada@corp.com"]
    assert rows[0]["company"] == '\'=HYPERLINK("x")'  # formula-safe, as segment export
    assert rows[0]["tags"] == "hot"
    bad = await client.get("/console/segments.csv", params={"where": "lead.fit >>= 3"})
    assert bad.status_code == 400


async def test_sales_have_no_segments(client: httpx.AsyncClient, tagged: World) -> None:
    await sign_in(client, tagged.owner("ada@corp.com"))
    assert (await client.get("/console/segments", params={"segment": "Hot"})).status_code == 403
    assert (await client.get("/console/segments.csv", params={"segment": "Hot"})).status_code == 403
