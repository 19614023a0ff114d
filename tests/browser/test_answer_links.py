"""Sales answer in a real browser: the accept link's page accepts only by its button, the
return form needs a reason and sends the lead back, on the tracking service under uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture import db
from nurture.models import Assignment, Lead, MqlRecord
from nurture.tokens import TokenSigner
from nurture.tracking import create_app
from tests.browser.conftest import snap
from tests.handoff.test_handoff_store import RULES, east_lead, qualify
from tests.handoff.test_route import deployed
from tests.live import serving

pytestmark = pytest.mark.asyncio

KEY = "browser-test-secret-0123456789abcdef"
REASONS = ["not a fit", "no budget", "wrong contact"]


@pytest.fixture
def links(pg_url: str) -> Iterator[dict[str, str]]:
    """Two MQLs on PostgreSQL and the service under uvicorn: each lead's answer link."""
    db.upgrade(pg_url)
    engine = db.make_engine(pg_url)
    routing = {**(RULES.routing or {}), "return_reasons": REASONS}
    with Session(engine) as session:
        session.add(deployed(routing))
        for email, company in (("ada@corp.com", "Analytical Engines"), ("li@corp.cn", "华夏")):
            lead = east_lead(session, email)
            lead.first_name, lead.company = email.split("@")[0].title(), company
            assert qualify(session, lead, RULES, datetime.now(UTC)) is not None
        session.commit()
        joined = select(Lead.email, Assignment.id).join(Assignment, Assignment.lead_id == Lead.id)
        given = {str(email): int(i) for email, i in session.execute(joined)}
    app = create_app(db.session_factory(engine), TokenSigner(KEY), api_key=None)
    signer = TokenSigner(KEY)
    with serving(app, "tracking service") as url:
        yield {email: f"{url}/s/{signer.answer_token(i)}" for email, i in given.items()}
    engine.dispose()


def record(pg_url: str, email: str) -> MqlRecord:
    engine = db.make_engine(pg_url)
    try:
        with Session(engine) as session:
            lead = session.scalars(select(Lead).where(Lead.email == email)).one()
            found = session.scalars(select(MqlRecord).where(MqlRecord.lead_id == lead.id)).one()
            session.expunge(found)
            return found
    finally:
        engine.dispose()


async def test_a_rep_opens_the_link_and_accepts_with_the_button(
    page: Any, links: dict[str, str], pg_url: str
) -> None:
    await page.goto(links["ada@corp.com"])
    assert await page.locator("h1").inner_text() == "Ada"
    assert "Analytical Engines" in await page.content()
    assert record(pg_url, "ada@corp.com").accepted_at is None  # opening is not accepting
    await snap(page, "answer-page")

    await page.get_by_role("button", name="Accept · 接受").click()

    await page.wait_for_selector("text=accepted by")
    assert "lead 1 accepted by wang.fang@t.io" in await page.inner_text("main")
    assert record(pg_url, "ada@corp.com").accepted_at is not None


async def test_a_rep_returns_a_lead_with_a_reason_from_the_list(
    page: Any, links: dict[str, str], pg_url: str
) -> None:
    await page.goto(links["li@corp.cn"] + "#return")
    await page.get_by_role("button", name="Return · 退回").click()  # no reason chosen yet
    await page.wait_for_selector("text=needs a reason")
    assert record(pg_url, "li@corp.cn").returned_at is None

    await page.go_back()
    await page.select_option("select[name=reason]", "no budget")
    await page.get_by_role("button", name="Return · 退回").click()

    await page.wait_for_selector("text=returned to nurture")
    returned = record(pg_url, "li@corp.cn")
    assert (returned.return_reason, returned.returned_at is not None) == ("no budget", True)
