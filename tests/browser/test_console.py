"""The console in a real browser (a phone-sized chromium), on PostgreSQL under uvicorn: a
sales rep signs in, accepts an MQL, returns another with a reason from the list, and
opens the lead to see its timeline and writes a note; an admin opens the users page and a
touch's message. Screenshots of each page go to test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from nurture.models import Lead, MqlRecord
from tests.browser.conftest import snap
from tests.console.conftest import PASSWORD, T, World, cheap_hashes, pg_world  # noqa: F401
from tests.console.test_campaigns import with_split
from tests.console.test_touch import with_touches
from tests.handoff.test_handoff_store import RULES, east_lead, qualify
from tests.live import serving

pytestmark = pytest.mark.asyncio


@pytest.fixture
def served(pg_world: World) -> Iterator[tuple[World, str, list[Lead]]]:  # noqa: F811
    """The console on uvicorn, and the two MQLs of one rep (a third lead added for them)."""
    rep = pg_world.owner("ada@corp.com")
    with pg_world.sessions() as session:
        n = 0
        while True:
            lead = east_lead(session, f"grace{n}@corp.com")
            lead.first_name, lead.company = f"Grace {n}", "Hopper & Co"
            mql = qualify(session, lead, RULES, T)
            session.commit()
            if mql is not None and mql.owner == rep:
                break
            n += 1
        mine = list(session.scalars(select(Lead).where(Lead.owner == rep).order_by(Lead.id)))
        for lead in mine:
            session.expunge(lead)
    with serving(pg_world.app, "console") as url:
        yield pg_world, url, mine


def answers(world: World, lead_id: int) -> MqlRecord:
    with world.sessions() as session:
        found = session.scalars(select(MqlRecord).where(MqlRecord.lead_id == lead_id)).one()
        session.expunge(found)
        return found


async def test_a_rep_signs_in_accepts_returns_and_reads_a_timeline(
    page: Any, served: tuple[World, str, list[Lead]]
) -> None:
    world, url, (first, second) = served
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if "Policy" in m.text else None)
    rep = str(first.owner)

    await page.goto(f"{url}/console/inbox")
    assert "/console/sign-in?next=/console/inbox" in page.url
    await snap(page, "console-sign-in")
    await page.fill("input[name=email]", rep)
    await page.fill("input[name=password]", PASSWORD)
    await page.get_by_role("button", name="Sign in").click()

    await page.wait_for_selector("h1:has-text('My MQLs')")
    assert page.url.endswith("/console/inbox")
    cards = page.locator("section.card")
    assert await cards.count() == 2
    # the countdown's script ran (the page's CSP lets only it run) and ticks from the
    # server's clock, which stands an hour after the MQL, not from the browser's
    countdown = page.locator(f"#lead-{first.id} .left")
    assert await countdown.get_attribute("data-ticked") == "yes"
    assert await countdown.inner_text() in ("23 h 0 min left", "22 h 59 min left")
    await snap(page, "console-inbox")

    await page.locator(f"#lead-{first.id}").get_by_role("button", name="Accept").click()
    await page.wait_for_selector(".flash:has-text('accepted by')")
    assert answers(world, first.id).accepted_at is not None

    card = page.locator(f"#lead-{second.id}")
    await card.get_by_role("button", name="Return").click()  # no reason yet: refused
    await page.wait_for_selector(".problem:has-text('needs a reason')")
    assert answers(world, second.id).returned_at is None
    card = page.locator(f"#lead-{second.id}")
    await card.locator("select[name=reason]").select_option("no budget")
    await card.get_by_role("button", name="Return").click()
    await page.wait_for_selector(".flash:has-text('returned to nurture')")
    returned = answers(world, second.id)
    assert (returned.return_reason, returned.returned_at is not None) == ("no budget", True)
    assert await page.locator(f"#lead-{second.id}").count() == 0
    await snap(page, "console-inbox-answered")

    await page.get_by_role("link", name=str(first.first_name)).click()
    await page.wait_for_selector("h2:has-text('Timeline')")
    timeline = await page.locator("table.timeline").inner_text()
    assert "accepted by " + rep in timeline
    assert "round robin" in timeline and "webinar_attended" in timeline
    await snap(page, "console-lead")

    await page.fill("textarea[name=text]", "Called: budget in Q3 <b>maybe</b>")
    await page.get_by_role("button", name="Add note").click()
    await page.wait_for_selector("text=Note added.")
    assert "Called: budget in Q3 <b>maybe</b>" in await page.locator("section.note").inner_text()
    timeline = await page.locator("table.timeline").inner_text()
    assert f"{rep}: Called: budget in Q3 <b>maybe</b>" in timeline
    await snap(page, "console-lead-note")

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_selector("h1:has-text('Sign in')")
    await page.goto(f"{url}/console/leads/{first.id}")
    assert "/console/sign-in" in page.url
    assert errors == []  # no script error, nothing refused by the content security policy


async def test_an_admin_sees_the_users_and_reads_a_touchs_message(
    page: Any,
    pg_world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    world = with_touches(pg_world, tmp_path)
    ada = world.leads["ada@corp.com"]
    with serving(world.app, "console") as url:
        await page.goto(f"{url}/console/users")
        await page.fill("input[name=email]", "admin@t.io")
        await page.fill("input[name=password]", PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_selector("h1:has-text('Users')")  # where the admin was going
        assert await page.locator("td:has-text('li.na@t.io')").count() == 1
        await snap(page, "console-users")

        await page.goto(f"{url}/console/leads/{ada.id}")
        await page.get_by_role("link", name="hello/note").click()
        await page.wait_for_selector("h2:has-text('Message')")
        frame = page.frame_locator("iframe")
        assert "Dear Ada of Analytical Engines" in await frame.locator("body").inner_text()
        assert await frame.locator("a").get_attribute("href") == "https://corp.example/guide"
        await snap(page, "console-touch")


LOADED = "s => { const i = document.querySelector(s); return i.complete && i.naturalWidth > 0 }"
"""True once the image `s` selects has loaded (an SVG Graphviz drew on request)."""


async def sign_in_as(page: Any, url: str, email: str, to: str) -> None:
    await page.goto(f"{url}{to}")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


async def test_a_marketer_opens_a_campaign_and_the_funnel(
    page: Any,
    pg_world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    world = with_touches(pg_world, tmp_path)
    with serving(world.app, "console") as url:
        await sign_in_as(page, url, "mia@t.io", "/console/campaigns")
        await page.get_by_role("link", name="Hello").click()
        await page.wait_for_selector("h2:has-text('Steps')")
        picture = page.locator("img[alt^='The flow of Hello']")
        await picture.scroll_into_view_if_needed()
        await page.wait_for_function(LOADED, arg="img[alt^='The flow of Hello']")  # the SVG
        steps = await page.locator("h2:has-text('Steps') + div table").inner_text()
        assert "hello/note" in steps
        await snap(page, "console-campaign")

        await page.get_by_role("link", name="Funnel").click()
        await page.wait_for_selector("svg[aria-label='Leads that reached each stage']")
        await snap(page, "console-funnel")
        await page.select_option("select[name=by]", "source")
        await page.get_by_role("button", name="Show").last.click()
        await page.wait_for_selector("svg[aria-label^='Leads reaching each stage by month: ']")
        assert "by=source" in page.url
        await page.locator("h2:has-text('By month')").scroll_into_view_if_needed()
        await snap(page, "console-funnel-months")
        await page.get_by_role("link", name="Deliveries").click()
        await page.wait_for_selector("h1:has-text('Deliveries')")
        await snap(page, "console-deliveries")


async def test_an_analyst_previews_a_segment_and_downloads_it(
    page: Any,
    pg_world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    with serving(pg_world.app, "console") as url:
        await sign_in_as(page, url, "ann@t.io", "/console/segments")
        await page.fill("textarea[name=where]", 'lead.region == "Shanghai"')
        await page.get_by_role("button", name="Count").click()
        await page.wait_for_selector("h2:has-text('2 leads')")
        assert "ada@corp.com" in await page.locator("table").inner_text()
        await snap(page, "console-segments")

        async with page.expect_download() as info:
            await page.get_by_role("link", name="Download CSV").click()
        download = await info.value
        target = tmp_path / download.suggested_filename
        await download.save_as(target)
        lines = target.read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("id,email,") and len(lines) == 3


async def test_a_marketer_sees_a_campaigns_counts_and_simulates_it(
    page: Any,
    pg_world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    split = with_split(pg_world, tmp_path)
    with serving(split.app, "console") as url:  # type: ignore[arg-type]
        await sign_in_as(page, url, "mia@t.io", "/console/campaigns")
        await page.get_by_role("link", name="AB").click()
        await page.wait_for_selector("h2:has-text('A/B splits')")
        live = page.locator("img[alt$='with its live numbers']")
        await live.scroll_into_view_if_needed()
        await page.wait_for_function(LOADED, arg="img[alt$='with its live numbers']")
        drawn = await page.request.get(url + str(await live.get_attribute("src")))
        assert drawn.status == 200 and "entered 12 · sent 12" in await drawn.text()  # its counts
        arms = await page.locator(".split table").first.inner_text()
        assert "short" in arms and "long" in arms
        await snap(page, "console-campaign-counts")

        await page.fill("input[name=leads]", "200")
        await page.fill("input[name=days]", "20")
        await page.get_by_role("button", name="Simulate").click()
        await page.wait_for_selector("h2:has-text('Simulated: 200 leads, 20 days')")
        projected = page.locator("img[alt$='with simulated numbers']")
        await projected.scroll_into_view_if_needed()
        await page.wait_for_function(LOADED, arg="img[alt$='with simulated numbers']")
        table = await page.locator("table.projection").inner_text()
        assert "200" in table
        await snap(page, "console-campaign-simulated")
