"""The campaigns pages: each deployed campaign with its leads; one campaign's flow picture
(Graphviz), versions and touches per step; not for sales."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from nurture.models import Campaign
from tests.console.conftest import World, sign_in
from tests.console.test_touch import client_of, with_touches

pytestmark = pytest.mark.asyncio


@pytest.fixture
def deployed(world: World, tmp_path: Path) -> tuple[World, int]:
    world = with_touches(world, tmp_path)
    with world.sessions() as session:
        return world, session.scalars(select(Campaign.id)).one()


async def test_the_campaigns_and_one_campaigns_numbers(deployed: tuple[World, int]) -> None:
    world, campaign = deployed
    async with await client_of(world) as client:
        await sign_in(client, "mia@t.io")
        listing = (await client.get("/console/campaigns")).text
        page = (await client.get(f"/console/campaigns/{campaign}")).text

    assert (
        f'<a href="/console/campaigns/{campaign}">Hello</a></td><td>1</td><td>0</td><td>1</td>'
        in listing
    )
    assert "<h1>Hello</h1>" in page
    assert "done 1" in page  # the version's one enrollment
    assert "<td>hello/note</td><td>2</td>" in page  # two touches of the first send step
    assert "<td>hello/tip-{{ loop.index }}</td><td>1</td>" in page.replace("&#34;", '"')


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz (dot) is not installed")
async def test_the_flow_picture_is_an_svg_image(deployed: tuple[World, int]) -> None:
    world, campaign = deployed
    async with await client_of(world) as client:
        await sign_in(client, "ann@t.io")
        page = (await client.get(f"/console/campaigns/{campaign}")).text
        src = f"/console/campaigns/{campaign}/versions/1.svg"
        assert f'<img src="{src}"' in page
        picture = await client.get(src)
        missing = await client.get(f"/console/campaigns/{campaign}/versions/9.svg")

    assert picture.headers["content-type"] == "image/svg+xml"
    assert picture.headers["content-security-policy"].startswith("default-src 'none'")
    assert b"<svg" in picture.content and b"hello/note" in picture.content
    assert missing.status_code == 404


async def test_sales_have_no_campaigns_and_unknown_ones_are_404(
    deployed: tuple[World, int],
) -> None:
    world, campaign = deployed
    async with await client_of(world) as client:
        await sign_in(client, world.owner("ada@corp.com"))
        assert (await client.get("/console/campaigns")).status_code == 403
        assert (await client.get(f"/console/campaigns/{campaign}")).status_code == 403
        client.cookies.clear()
        await sign_in(client, "admin@t.io")
        assert (await client.get("/console/campaigns/999")).status_code == 404
