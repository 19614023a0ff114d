"""The users page: admins add and remove users; every other role gets the forbidden page."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from nurture.models import User
from tests.console.conftest import PASSWORD, World, form, sign_in

pytestmark = pytest.mark.asyncio


def emails(world: World) -> list[str]:
    with world.sessions() as session:
        return sorted(session.scalars(select(User.email)))


@pytest.mark.parametrize("email", ["wang.fang@t.io", "mia@t.io", "ann@t.io"])
async def test_only_admins_manage_users(
    client: httpx.AsyncClient, world: World, email: str
) -> None:
    await sign_in(client, email)
    page = await client.get("/console/users")
    assert (page.status_code, "Only admins manage users." in page.text) == (403, True)
    inbox = (await client.get("/console/inbox")).text
    assert 'href="/console/users"' not in inbox

    added = await form(
        client, inbox, "/console/users", email="x@t.io", role="admin", password=PASSWORD
    )
    removed = await form(client, inbox, "/console/users/1/remove")

    assert (added.status_code, removed.status_code) == (403, 403)
    assert "x@t.io" not in emails(world) and len(emails(world)) == 5


async def test_an_admin_adds_and_removes_a_user(client: httpx.AsyncClient, world: World) -> None:
    await sign_in(client, "admin@t.io")
    page = (await client.get("/console/users")).text
    assert "<td>li.na@t.io</td><td>sales</td><td>yes</td>" in page  # a routing member

    short = await form(
        client, page, "/console/users", email="new@t.io", role="analyst", password="short"
    )
    assert (short.status_code, "at least 10 characters" in short.text) == (400, True)
    added = await form(
        client, page, "/console/users", email="New@t.io", role="analyst", password=PASSWORD
    )
    assert added.headers["location"] == "/console/users"
    assert "new@t.io" in emails(world)

    page = (await client.get("/console/users")).text
    assert "Added new@t.io (analyst)." in page
    with world.sessions() as session:
        new_id = session.scalars(select(User.id).where(User.email == "new@t.io")).one()
        admin_id = session.scalars(select(User.id).where(User.email == "admin@t.io")).one()
    assert (await form(client, page, f"/console/users/{new_id}/remove")).status_code == 303
    assert "new@t.io" not in emails(world)
    myself = await form(client, page, f"/console/users/{admin_id}/remove")
    assert (myself.status_code, "cannot remove yourself" in myself.text) == (400, True)
    assert (await form(client, page, "/console/users/999/remove")).status_code == 404
