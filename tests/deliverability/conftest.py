"""Fixtures for the deliverability tests: a migrated database of each kind, and deliveries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from nurture import db
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
