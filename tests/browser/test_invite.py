"""An invitation in a real browser (a phone-sized chromium), on PostgreSQL under uvicorn: an
admin invites a routing member from the users page; the member opens the link from the
outbox's email, chooses a password and lands in their inbox with their MQL. Screenshots
of each page go to test-artifacts/."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from nurture.config import Settings
from nurture.console import create_console
from nurture.console.invites import Mailer
from nurture.models import User
from nurture.runtime.sending import send_email_now
from nurture.tokens import TokenSigner
from nurture.tracking import create_app
from tests.browser.conftest import snap
from tests.console.conftest import KEY, LOCKOUT, PASSWORD, World, cheap_hashes, pg_world  # noqa: F401
from tests.live import serving

pytestmark = pytest.mark.asyncio


@pytest.fixture
def served(pg_world: World, tmp_path: Path) -> Iterator[tuple[World, str, Path]]:  # noqa: F811
    """The console on uvicorn, its invitations written to an outbox; li.na has no user."""
    outbox = tmp_path / "outbox"
    settings = Settings(outbox=outbox, sender="Tidewater <hello@t.io>")
    mailer = Mailer(
        "http://console.test", "t.io", lambda m: send_email_now(settings, m), timedelta(days=7)
    )
    console = create_console(
        pg_world.sessions, [KEY], clock=pg_world.clock, lockout=LOCKOUT, mailer=mailer
    )
    pg_world.app = create_app(pg_world.sessions, TokenSigner(KEY), api_key=None, console=console)
    with pg_world.sessions() as session:
        session.execute(delete(User).where(User.email == "li.na@t.io"))
        session.commit()
    with serving(pg_world.app, "console") as url:
        yield pg_world, url, outbox


def link_in(outbox: Path) -> str:
    """The path of the link in the one invitation of `outbox`."""
    (eml,) = outbox.glob("*.eml")
    sent = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    body = sent.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
    found = re.search(r"https?://[^/\s]+(/console/welcome/\S+)", body.get_content())
    assert found is not None
    return found.group(1)


async def test_an_invited_rep_opens_the_link_chooses_a_password_and_lands_in_the_inbox(
    page: Any, served: tuple[World, str, Path]
) -> None:
    world, url, outbox = served
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if "Policy" in m.text else None)

    # Given an admin on the users page, who invites the routing's members without an account
    await page.goto(f"{url}/console/users")
    await page.fill("input[name=email]", "admin@t.io")
    await page.fill("input[name=password]", PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_selector("h1:has-text('Users')")
    await page.get_by_role("button", name="Invite them all as sales").click()
    await page.wait_for_selector("text=Invited li.na@t.io (sales): email sent.")
    assert await page.locator("td:has-text('invite pending')").count() == 4  # li.na, amy, tom, boss
    await snap(page, "console-users-invited")
    await page.get_by_role("button", name="Sign out").click()

    # When li.na opens the link of her email and chooses a password
    for eml in list(outbox.glob("*.eml")):
        if "li.na@t.io" not in eml.read_text():
            eml.unlink()
    await page.goto(url + link_in(outbox))
    await page.wait_for_selector("h1:has-text('Welcome to nurture')")
    await snap(page, "console-welcome")
    await page.fill("input[name=password]", "li.na's own password")
    await page.fill("input[name=again]", "li.na's own password")
    await page.get_by_role("button", name="Set my password and sign in").click()

    # Then she is signed in, in her inbox, with the MQL routed to her
    await page.wait_for_selector("h1:has-text('My MQLs')")
    assert page.url.endswith("/console/inbox")
    assert "li.na@t.io · sales" in await page.locator("header").inner_text()
    mine = [lead for lead in world.leads.values() if lead.owner == "li.na@t.io"]
    assert len(mine) == 1 and await page.locator(f"#lead-{mine[0].id}").count() == 1
    await snap(page, "console-welcome-inbox")
    assert errors == []
