"""Fixtures for the deliverability tests: a migrated database of each kind, and deliveries."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from nurture import db
from nurture.deliverability.feedback import BouncePolicy
from nurture.deliverability.inbound import BounceHandler
from nurture.deliverability.verp import Verp
from nurture.models import Campaign, CampaignVersion, Delivery, Enrollment, Lead


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database of each kind, by URL."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url"}[request.param]
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database upgraded to the newest migration."""
    db.upgrade(db_url)
    engine = db.make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the upgraded database."""
    with db.session_factory(engine)() as session:
        yield session


def make_delivery(
    session: Session,
    email: str = "ada@corp.com",
    *,
    phone: str | None = "+8613912345678",
    channel: str = "email",
    step: str = "welcome",
) -> Delivery:
    """A lead with an email and a phone, enrolled in a campaign, and one delivery to it."""
    lead = session.query(Lead).filter_by(email=email).one_or_none()
    if lead is None:
        lead = Lead(email=email, phone=phone)
        session.add(lead)
        session.flush()
    campaign = session.query(Campaign).filter_by(name="welcome").one_or_none()
    if campaign is None:
        campaign = Campaign(name="welcome")
        session.add(campaign)
        session.flush()
        session.add(
            CampaignVersion(
                campaign_id=campaign.id,
                version=1,
                content_hash="0" * 64,
                graph={"steps": []},
                source="",
            )
        )
        session.flush()
    version = session.query(CampaignVersion).filter_by(campaign_id=campaign.id).one()
    enrollment = Enrollment(lead_id=lead.id, campaign_version_id=version.id, cursor="start")
    session.add(enrollment)
    session.flush()
    delivery = Delivery(
        enrollment_id=enrollment.id,
        step_id=step,
        iteration=0,
        lead_id=lead.id,
        channel=channel,
        template="welcome.html",
        message_id=f"<{enrollment.id}.{step}@corp.example>",
        status="sent",
    )
    session.add(delivery)
    session.flush()
    return delivery


SECRET = "bounces-test-secret-0123456789abcdef"
BOUNCE_DOMAIN = "bounces.acme.test"


class LocalSmtp(Controller):
    """A real aiosmtpd server on 127.0.0.1, an ephemeral port (`port` once started)."""

    def __init__(self, handler: object, **kwargs: Any) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=0, **kwargs)

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class Listener(LocalSmtp):
    """`BounceHandler` under a real aiosmtpd server."""

    def __init__(self, handler: BounceHandler) -> None:
        self.handler = handler
        super().__init__(handler, server_hostname=BOUNCE_DOMAIN)

    def send(self, data: bytes, to: str, sender: str = "") -> str:
        """Send `data` to `to` at this listener; see `smtp_send`."""
        return smtp_send(self.port, data, to, sender)


def smtp_send(port: int, data: bytes, to: str, sender: str = "") -> str:
    """Send `data` to `to` over SMTP at 127.0.0.1:`port` (null sender, as DSNs come); the
    server's reply. A refusal raises aiosmtplib's error, whose text is the server's."""

    async def go() -> str:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as client:
            _, reply = await client.sendmail(sender, [to], data)
            return reply

    return asyncio.run(go())


@pytest.fixture
def now() -> list[datetime]:
    """The listener's clock: the first item, which a test may move."""
    return [datetime(2026, 3, 2, 10, 0, tzinfo=UTC)]


@pytest.fixture
def verp() -> Verp:
    return Verp(BOUNCE_DOMAIN, [SECRET])


@pytest.fixture
def listener(engine: Engine, verp: Verp, now: list[datetime]) -> Iterator[Listener]:
    handler = BounceHandler(
        db.session_factory(engine),
        verp,
        BouncePolicy(soft_limit=3, window=timedelta(days=7)),
        clock=lambda: now[0],
    )
    server = Listener(handler)
    server.start()
    yield server
    server.stop()
