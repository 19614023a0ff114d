"""The other actions of a decision: MQL, notify sales, score, untag; stored with the state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels import RecordingChannel
from nurture.config import Settings
from nurture.engine.clock import VirtualClock
from nurture.models import Lead, MqlRecord, Tag
from nurture.runtime.deploying import deploy_sources
from nurture.runtime.process import Runtime
from tests.runtime.conftest import add_lead
from tests.runtime.helpers import Driver, deliveries

HOT = """\
campaign "Hot"
  enroll when lead created
  tag "hot"
  untag "cold"
  score +15
  if score >= 15:
    mql
    notify sales "t/sales"
"""
SALES = """\
{% block subject %}New MQL: {{ lead.first_name }} at {{ lead.company }}{% endblock %}
{% block html %}<p>{{ lead.first_name }} is ready.
<a href="https://crm.acme.test/lead">Open in the CRM</a></p>{% endblock %}
"""


@pytest.fixture
def hot(sessions: sessionmaker[Session], tmp_path: Path, clock: VirtualClock) -> None:
    folder = tmp_path / "hot"
    (folder / "templates" / "t").mkdir(parents=True)
    (folder / "templates" / "t" / "sales.email.j2").write_text(SALES)
    (folder / "hot.nurture").write_text(HOT)
    deploy_sources(sessions, {str(folder / "hot.nurture"): HOT}, clock.now())


@pytest.fixture
def with_sales(
    settings: Settings, clock: VirtualClock, channel: RecordingChannel, deployed: object
) -> Iterator[Runtime]:
    """A runtime whose settings name a sales address."""
    runtime = Runtime.start(
        settings.with_changes(sales_email="sales@acme.test"),
        clock,
        channels=lambda: dict.fromkeys(("email", "sms"), channel),
    )
    yield runtime
    runtime.close()


def test_mql_and_the_sales_notification(
    hot: None, with_sales: Runtime, channel: RecordingChannel, sessions: sessionmaker[Session]
) -> None:
    lead_id = add_lead(sessions, company="Analytical Engines")
    with sessions() as session, session.begin():
        session.add(Tag(lead_id=lead_id, tag="cold", tagged_at=with_sales.clock.now()))

    Driver(with_sales).tick()

    with sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None and lead.stage == "mql"
        assert lead.attributes["score_delta"] == 15
        assert session.scalars(select(Tag.tag).where(Tag.lead_id == lead_id)).all() == ["hot"]
        record = session.scalars(select(MqlRecord)).one()
        assert 'campaign "Hot"' in record.rule
    # the notification went to sales, with nothing that would track the lead
    notes = [m for m in channel.messages if m.to == "sales@acme.test"]
    [note] = notes
    assert note.subject == "New MQL: Ada at Analytical Engines"
    assert note.unsubscribe_url is None
    assert 'href="https://crm.acme.test/lead"' in note.html and "/o/" not in note.html
    [row] = [d for d in deliveries(sessions) if d.template == "t/sales"]
    assert (row.status, row.links) == ("sent", None)
