"""The handoff end to end on the example campaigns: deployed routing, a qualifying event,
the scheduler's tick sending the owner's email and the CRM webhook over real SMTP and
HTTP, the reminder before the deadline, and the reassignment after it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from nurture.config import Settings
from nurture.engine.clock import VirtualClock
from nurture.models import Lead, Notice
from nurture.runtime.deploying import campaign_files, deploy_sources
from nurture.runtime.notifying import notice_sender
from nurture.runtime.process import Runtime
from nurture.runtime.scheduler import Scheduler
from nurture.store import record_event
from tests.channels.provider import SECRET as WEBHOOK_SECRET
from tests.channels.provider import Provider
from tests.channels.servers import SmtpServer

CAMPAIGNS = Path(__file__).resolve().parents[2] / "campaigns"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def world(
    migrated_url: str, smtp_server: SmtpServer, provider: Provider
) -> Iterator[tuple[Runtime, Scheduler, VirtualClock]]:
    clock = VirtualClock(START)
    settings = Settings(
        database_url=migrated_url,
        secret_key="flow-test-secret-0123456789abcdef",
        smtp_url=smtp_server.url(),
        sender="Tidewater <news@tidewater.test>",
        base_url="https://t.tidewater.test",
        crm_webhook_url=f"{provider.base_url}/hook/crm",
        webhook_secret=WEBHOOK_SECRET,
    )
    runtime = Runtime.start(settings, clock)
    deploy_sources(runtime.sessions, campaign_files([CAMPAIGNS]), clock.now())
    scheduler = Scheduler(
        runtime.sessions,
        clock,
        settings,
        lambda ids, lease: None,
        graphs=runtime.graphs,
        notices=notice_sender(runtime).send_pending,
    )
    yield runtime, scheduler, clock
    runtime.close()


def test_a_demo_request_reaches_sales_and_an_unanswered_mql_moves_on(
    world: tuple[Runtime, Scheduler, VirtualClock], smtp_server: SmtpServer, provider: Provider
) -> None:
    runtime, scheduler, clock = world
    with runtime.sessions() as session, session.begin():
        lead = Lead(
            email="ada@shanghai-saas.cn",
            first_name="Ada",
            company="Shanghai SaaS",
            title="VP Marketing",
            attributes={"industry": "saas", "region": "Shanghai"},
            created_at=START,
            updated_at=START,
        )
        session.add(lead)
        session.flush()
        lead_id = lead.id
        mql = record_event(session, lead_id, "custom", "demo_requested", START).mql
        assert mql is not None and mql.owner == "li.na@tidewater.io"  # east: fewest open

    report = scheduler.tick()

    assert report.notices == 2
    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ["li.na@tidewater.io"]
    assert mail.message["Subject"] == "New MQL for you: Ada at Shanghai SaaS"
    text = mail.message.get_body(("plain",)).get_content()
    assert "demo_requested" in text and "https://t.tidewater.test/s/" in text
    [crm] = provider.requests
    assert crm.json["lead"]["email"] == "ada@shanghai-saas.cn"

    clock.advance(21 * HOUR)  # `remind 4 hours before` a 24-hour deadline
    assert scheduler.tick().reminded == 1
    assert len(smtp_server.messages) == 2

    clock.advance(4 * HOUR)  # not accepted within 24 hours: the next member of east
    report = scheduler.tick()
    assert report.expired == 1
    with runtime.sessions() as session:
        owner = session.scalar(select(Lead.owner).where(Lead.id == lead_id))
        kinds = [(n.owner, n.kind, n.status) for n in session.scalars(select(Notice))]
    assert owner == "wang.fang@tidewater.io"
    assert smtp_server.messages[-1].rcpt_tos == ["wang.fang@tidewater.io"]
    assert ("wang.fang@tidewater.io", "assigned", "sent") in kinds
    assert all(status == "sent" for _, _, status in kinds)
