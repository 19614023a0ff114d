"""The other actions of a decision: MQL, notify sales, score, untag; stored with the state."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
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
from nurture.store import active_scoring, history, lead_view, rescore
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


def deploy_text(
    sessions: sessionmaker[Session], folder: Path, text: str, clock: VirtualClock
) -> None:
    """Deploy one file of `text` beside the sales template."""
    (folder / "templates" / "t").mkdir(parents=True, exist_ok=True)
    (folder / "templates" / "t" / "sales.email.j2").write_text(SALES)
    (folder / "flow.nurture").write_text(text)
    deploy_sources(sessions, {str(folder / "flow.nurture"): text}, clock.now())


WEEKLY = """\
campaign "Weekly sales digest"
  enroll when lead created
  repeat 3 times:
    notify sales "t/weekly"
    wait 1 week
"""
WEEKLY_NOTE = """\
{% block subject %}Week {{ loop.index }}: {{ lead.company }}{% endblock %}
{% block text %}Still warm.{% endblock %}
"""


@pytest.fixture
def weekly(sessions: sessionmaker[Session], tmp_path: Path, clock: VirtualClock) -> None:
    (tmp_path / "weekly" / "templates" / "t").mkdir(parents=True)
    (tmp_path / "weekly" / "templates" / "t" / "weekly.email.j2").write_text(WEEKLY_NOTE)
    deploy_text(sessions, tmp_path / "weekly", WEEKLY, clock)


def test_a_notification_inside_a_repeat_goes_once_a_round(
    weekly: None, with_sales: Runtime, channel: RecordingChannel, sessions: sessionmaker[Session]
) -> None:
    # Given a lead in a flow that notifies sales each week for three weeks
    add_lead(sessions, company="Analytical Engines")
    driver = Driver(with_sales)

    # When four weeks pass
    for _ in range(4):
        driver.tick()
        with_sales.clock.advance(timedelta(weeks=1))

    # Then sales got three emails, each its own delivery with its own Message-ID,
    # each naming its round
    notes = [m for m in channel.messages if m.to == "sales@acme.test"]
    assert [m.subject for m in notes] == [f"Week {n}: Analytical Engines" for n in (1, 2, 3)]
    rows = [d for d in deliveries(sessions) if d.template == "t/weekly"]
    assert sorted(r.iteration for r in rows) == [0, 1, 2]
    assert len({r.message_id for r in rows}) == 3


WARM_UP = """\
scoring "Manual points"
  fit:
    +10 when lead.company == "Analytical Engines"
  interest:
    +1 per open
  mql when score >= 30

campaign "Warm up"
  enroll when lead created
  score +25
  tag "warmed"
"""


@pytest.fixture
def warm_up(sessions: sessionmaker[Session], tmp_path: Path, clock: VirtualClock) -> None:
    deploy_text(sessions, tmp_path / "warm", WARM_UP, clock)


def test_a_score_step_counts_towards_the_mql_rule(
    warm_up: None, with_sales: Runtime, sessions: sessionmaker[Session]
) -> None:
    # Given the rule `score >= 30`, a lead with fit 10 and a flow that adds 25 points
    lead_id = add_lead(sessions, company="Analytical Engines")
    with sessions() as session, session.begin():
        rescore(session, lead_id, active_scoring(session), with_sales.clock.now())

    # When the flow runs
    Driver(with_sales).tick()

    # Then the stored score counts the step (10 + 25) and the rule made the lead an MQL
    with sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        assert lead_view(session, lead).score == 35
        assert lead.stage == "mql"
        record = session.scalars(select(MqlRecord)).one()
        assert record.rule == 'scoring "Manual points": mql when score >= 30'
        assert record.cause_event_id is None
        [transition] = history(session, lead_id)
        assert transition.cause.endswith('campaign "Warm up": score +25, tag "warmed"')


def test_a_lead_below_the_rule_after_a_score_step_stays_a_lead(
    warm_up: None, with_sales: Runtime, sessions: sessionmaker[Session]
) -> None:
    # Given a lead with no fit points: 25 from the flow is short of 30
    lead_id = add_lead(sessions, company="Difference Engines")

    Driver(with_sales).tick()

    with sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None and lead.stage == "lead"
        assert lead_view(session, lead).score == 25
        assert session.scalars(select(MqlRecord)).all() == []
