"""The deliveries page: unknown touches (maybe delivered) and failed ones with their reason;
admins release an unknown one for resending or confirm it delivered; sales see none of it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from nurture.models import Delivery
from tests.console.conftest import World, form, sign_in
from tests.console.test_touch import client_of, touch_ids, with_touches

pytestmark = pytest.mark.asyncio


@pytest.fixture
def troubled(world: World, tmp_path: Path) -> World:
    """Ada's touches: one unknown, one failed with the server's reason, one sent."""
    world = with_touches(world, tmp_path)
    ids = touch_ids(world)
    with world.sessions() as session:
        for delivery in session.scalars(select(Delivery)):
            if delivery.id == ids["hello/note"]:
                delivery.status, delivery.sent_at = "unknown", None
            elif delivery.id == ids["hello/tip-2"]:
                delivery.status, delivery.error = (
                    "failed",
                    "550 <script>mailbox</script> unavailable",
                )
        session.commit()
    return world


def status(world: World, delivery_id: int) -> tuple[str, str | None]:
    with world.sessions() as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        return row.status, row.error


async def test_admins_see_unknown_and_failed_touches_and_release_one(troubled: World) -> None:
    ids = touch_ids(troubled)
    async with await client_of(troubled) as client:
        await sign_in(client, "admin@t.io")
        page = (await client.get("/console/deliveries")).text
        assert "failed 1 · sent 1 · unknown 1" in page
        assert f"#{ids['hello/note']} email “hello/note” to ada@corp.com" in page
        assert "550 &lt;script&gt;mailbox&lt;/script&gt; unavailable" in page
        action = f"/console/deliveries/{ids['hello/note']}/release"
        assert f'action="{action}"' in page

        done = await form(client, page, action, reason="SMTP log shows no 250")
        assert done.status_code == 303
        state, note = status(troubled, ids["hello/note"])
        assert state == "deferred" and note is not None
        assert "released for resending by admin@t.io" in note and "no 250" in note
        after = (await client.get("/console/deliveries")).text
        assert f"Delivery {ids['hello/note']} released for resending." in after

        again = await form(client, after, action)  # not unknown any more
        assert again.status_code == 409
        assert "it is deferred, not unknown" in again.text


async def test_an_unknown_touch_can_be_confirmed_delivered(troubled: World) -> None:
    ids = touch_ids(troubled)
    async with await client_of(troubled) as client:
        await sign_in(client, "admin@t.io")
        page = (await client.get("/console/deliveries")).text
        await form(
            client, page, f"/console/deliveries/{ids['hello/note']}/release", delivered="yes"
        )
    assert status(troubled, ids["hello/note"])[0] == "sent"


async def test_marketers_read_and_sales_see_nothing(troubled: World) -> None:
    ids = touch_ids(troubled)
    async with await client_of(troubled) as client:
        await sign_in(client, "mia@t.io")
        page = (await client.get("/console/deliveries")).text
        assert "hello/note" in page and "/release" not in page
        refused = await form(client, page, f"/console/deliveries/{ids['hello/note']}/release")
        assert refused.status_code == 403
        client.cookies.clear()
        await sign_in(client, troubled.owner("ada@corp.com"))
        assert (await client.get("/console/deliveries")).status_code == 403
        inbox = (await client.get("/console/inbox")).text
        assert 'href="/console/deliveries"' not in inbox
    assert status(troubled, ids["hello/note"])[0] == "unknown"


async def test_the_page_without_deliveries(client: httpx.AsyncClient) -> None:
    await sign_in(client, "ann@t.io")
    page = (await client.get("/console/deliveries")).text
    assert "no deliveries yet" in page and "No unknown deliveries." in page
