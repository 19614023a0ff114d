"""Interest decays on the lead row without a new event: the scheduler's sweep rescores it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from nurture.engine.clock import VirtualClock
from nurture.models import Lead, MqlRecord, Tag
from nurture.runtime.deploying import deploy_sources
from nurture.runtime.process import Runtime
from nurture.store.scoring import record_event
from tests.runtime.campaign import write_campaign
from tests.runtime.conftest import MONDAY, add_lead
from tests.runtime.helpers import Driver
from tests.runtime.test_enrolling import campaigns_of

DAY = timedelta(days=1)

COOLING = """\
scoring "S"
  interest:
    +40 per click
    decay 50% every 10 days
  mql when interest >= 70

segment "cooled trial"
  tagged "trial" and interest < 30

campaign "Warm again"
  enroll when segment "cooled trial"
  send email "t/more"
"""


def deploy(sessions: sessionmaker[Session], folder: Path, clock: VirtualClock) -> None:
    file = write_campaign(folder, COOLING, "cooling.nurture")
    deploy_sources(sessions, {str(file): file.read_text()}, clock.now())


def scores(runtime: Runtime, lead_id: int) -> tuple[float, object]:
    with runtime.sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        return lead.interest, lead.rescore_at


def test_a_lead_whose_interest_decays_is_rescored_and_enters_the_segment(
    runtime: Runtime, tmp_path: Path, clock: VirtualClock
) -> None:
    # Given a trial lead who clicked 5 days ago (40 points, halved every 10 days)
    deploy(runtime.sessions, tmp_path / "cooling", clock)
    driver = Driver(runtime)
    lead_id = add_lead(runtime.sessions, triggers_checked_at=MONDAY)
    with runtime.sessions() as session, session.begin():
        session.add(Tag(lead_id=lead_id, tag="trial", tagged_at=MONDAY - 6 * DAY))
        record_event(session, lead_id, "clicked", None, MONDAY - 5 * DAY, now=MONDAY)
    driver.tick()
    assert scores(runtime, lead_id) == (40, MONDAY + 5 * DAY)
    assert "Warm again" not in campaigns_of(runtime.sessions, lead_id)

    # When six quiet days pass: the click is one period old, nothing else happened
    clock.advance(6 * DAY)
    report = driver.scheduler.tick()
    driver.drain()

    # Then the sweep rescored the lead, and the segment saw the decayed interest
    assert report.rescored == 1
    assert scores(runtime, lead_id) == (20, MONDAY + 15 * DAY)
    assert campaigns_of(runtime.sessions, lead_id).count("Warm again") == 1

    # And a lead is rescored once per boundary, not on every sweep
    clock.advance(DAY)
    assert driver.scheduler.tick().rescored == 0


def test_a_lead_with_nothing_left_to_decay_is_never_swept(
    runtime: Runtime, tmp_path: Path, clock: VirtualClock
) -> None:
    deploy(runtime.sessions, tmp_path / "cooling", clock)
    lead_id = add_lead(runtime.sessions, triggers_checked_at=MONDAY)
    with runtime.sessions() as session, session.begin():
        record_event(session, lead_id, "opened", None, MONDAY)  # no points for opens
    assert scores(runtime, lead_id) == (0, None)
    clock.advance(40 * DAY)
    assert Driver(runtime).scheduler.tick().rescored == 0


def test_decay_never_demotes_an_mql(runtime: Runtime, tmp_path: Path, clock: VirtualClock) -> None:
    # Given a lead made MQL by two clicks (80 >= 70)
    deploy(runtime.sessions, tmp_path / "cooling", clock)
    lead_id = add_lead(runtime.sessions, triggers_checked_at=MONDAY)
    with runtime.sessions() as session, session.begin():
        record_event(session, lead_id, "clicked", None, MONDAY)
        record_event(session, lead_id, "clicked", None, MONDAY)

    # When its interest halves
    clock.advance(11 * DAY)
    assert Driver(runtime).scheduler.tick().rescored == 1

    # Then it is still an MQL, recorded once
    with runtime.sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        assert (lead.interest, lead.stage) == (40, "mql")
        assert session.query(MqlRecord).filter_by(lead_id=lead_id).count() == 1
