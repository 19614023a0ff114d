"""Enrollment triggers: created, tagged, event, inactive, `enroll` steps; each exactly once."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels import RecordingChannel
from nurture.config import Settings
from nurture.engine.clock import VirtualClock
from nurture.models import Campaign, CampaignVersion, Enrollment, Lead, Tag
from nurture.runtime.deploying import deploy_sources
from nurture.runtime.process import Runtime
from nurture.store.scoring import record_event
from tests.runtime.campaign import write_campaign
from tests.runtime.conftest import MONDAY, add_lead
from tests.runtime.helpers import Driver, ListQueue

FLOWS = """\
campaign "Product drip"
  enroll when tagged "interest:product"
  send email "t/more"

campaign "After the webinar"
  enroll when event "webinar_attended"
  send email "t/more"
  enroll "Product drip"

campaign "Win back"
  enroll when inactive for 30 days
  reenter after 10 days
  send email "t/more"
"""


@pytest.fixture
def flows(sessions: sessionmaker[Session], tmp_path: Path, clock: VirtualClock) -> Path:
    file = write_campaign(tmp_path / "flows", FLOWS, "flows.nurture")
    deploy_sources(sessions, {str(file): file.read_text()}, clock.now())
    return file


def campaigns_of(sessions: sessionmaker[Session], lead_id: int) -> list[str]:
    with sessions() as session:
        return list(
            session.scalars(
                select(Campaign.name)
                .join(CampaignVersion, CampaignVersion.campaign_id == Campaign.id)
                .join(Enrollment, Enrollment.campaign_version_id == CampaignVersion.id)
                .where(Enrollment.lead_id == lead_id)
                .order_by(Enrollment.id)
            )
        )


def test_a_new_lead_enrolls_once_however_often_it_is_checked(runtime: Runtime) -> None:
    driver = Driver(runtime)
    lead_id = add_lead(runtime.sessions)
    driver.hooks.on_lead(lead_id, True)
    driver.hooks.on_lead(lead_id, True)
    driver.scheduler.tick()
    assert campaigns_of(runtime.sessions, lead_id) == ["Hello"]
    [(ids, _lease)] = [m for m in driver.queue.messages if m[1] is None]
    assert len(ids) == 1


def test_a_tag_enrolls_once_and_a_later_event_enrolls_and_hands_over(
    runtime: Runtime, flows: Path, clock: VirtualClock, channel: RecordingChannel
) -> None:
    driver = Driver(runtime)
    lead_id = add_lead(runtime.sessions, triggers_checked_at=MONDAY)  # not a new lead

    # When the lead is tagged, twice over two polls
    with runtime.sessions() as session, session.begin():
        session.add(Tag(lead_id=lead_id, tag="interest:product", tagged_at=clock.now()))
    driver.tick()
    driver.tick()
    assert campaigns_of(runtime.sessions, lead_id) == ["Product drip"]

    # When the lead attends the webinar
    with runtime.sessions() as session, session.begin():
        record_event(session, lead_id, "custom", "webinar_attended", clock.now())
    driver.tick()
    driver.tick()

    # Then it enters that campaign, whose `enroll "Product drip"` is refused (never reenter)
    assert campaigns_of(runtime.sessions, lead_id) == ["Product drip", "After the webinar"]
    assert len(channel.messages) == 2


def test_an_enroll_step_enters_the_target_campaign(
    runtime: Runtime, flows: Path, clock: VirtualClock
) -> None:
    driver = Driver(runtime)
    lead_id = add_lead(runtime.sessions, triggers_checked_at=MONDAY)
    with runtime.sessions() as session, session.begin():
        record_event(session, lead_id, "custom", "webinar_attended", clock.now())
    driver.tick()
    driver.tick()
    assert campaigns_of(runtime.sessions, lead_id) == ["After the webinar", "Product drip"]


BURST = """\
campaign "Three visits"
  enroll when event "page_viewed" count >= 3 within 7 days
  send email "t/more"
"""


def test_a_count_trigger_enrolls_when_the_third_visit_of_a_week_arrives(
    runtime: Runtime, sessions: sessionmaker[Session], tmp_path: Path, clock: VirtualClock
) -> None:
    # Given a campaign entered on three page views in a week
    file = write_campaign(tmp_path / "burst", BURST, "burst.nurture")
    deploy_sources(sessions, {str(file): file.read_text()}, clock.now())
    driver = Driver(runtime)
    steady = add_lead(runtime.sessions, triggers_checked_at=MONDAY)
    burst = add_lead(
        runtime.sessions, "burst@example.com", phone="+8613912345679", triggers_checked_at=MONDAY
    )

    # When one lead visits on days 0, 4, 8 and 12, each checked as it comes,
    # and the other on days 12 and 13, checked, then day 15
    def visit(lead_id: int, day: int) -> None:
        clock.advance_to(max(clock.now(), MONDAY + timedelta(days=day)))
        with runtime.sessions() as session, session.begin():
            record_event(session, lead_id, "page_viewed", None, MONDAY + timedelta(days=day))
        driver.tick()

    for day in (0, 4, 8, 12):
        visit(steady, day)
    visit(burst, 12)
    visit(burst, 13)
    assert campaigns_of(runtime.sessions, burst) == []
    visit(burst, 15)

    # Then only the burst enters, at its third visit, and once however often it is checked
    driver.tick()
    assert campaigns_of(runtime.sessions, steady) == []
    assert campaigns_of(runtime.sessions, burst) == ["Three visits"]


def test_visits_checked_together_late_still_count_as_they_happened(
    runtime: Runtime, sessions: sessionmaker[Session], tmp_path: Path, clock: VirtualClock
) -> None:
    # Given the same campaign, and visits recorded before any check: days 0, 5 and 10, and
    # for a second lead days 0, 1 and 2, all checked in one poll a while later
    file = write_campaign(tmp_path / "burst", BURST, "burst.nurture")
    deploy_sources(sessions, {str(file): file.read_text()}, clock.now())
    driver = Driver(runtime)
    spread = add_lead(runtime.sessions, triggers_checked_at=MONDAY)
    close = add_lead(
        runtime.sessions, "close@example.com", phone="+8613912345679", triggers_checked_at=MONDAY
    )
    with runtime.sessions() as session, session.begin():
        for lead_id, days in ((spread, (0, 5, 10)), (close, (0, 1, 2))):
            for day in days:
                at = MONDAY + timedelta(days=day)
                record_event(session, lead_id, "page_viewed", None, at, now=at)
    clock.advance(timedelta(days=40))
    driver.tick()

    # Then each count is taken as of its own visit: the close visits enroll, the spread ones not
    assert campaigns_of(runtime.sessions, close) == ["Three visits"]
    assert campaigns_of(runtime.sessions, spread) == []


def test_inactive_leads_enroll_on_the_sweep_and_reenter_after_the_gap(
    runtime: Runtime, flows: Path, clock: VirtualClock
) -> None:
    driver = Driver(runtime)
    quiet = add_lead(
        runtime.sessions, created_at=MONDAY - timedelta(days=40), triggers_checked_at=MONDAY
    )
    busy = add_lead(
        runtime.sessions,
        "busy@client.example",
        phone=None,
        created_at=MONDAY - timedelta(days=40),
        last_activity_at=MONDAY - timedelta(days=2),
        triggers_checked_at=MONDAY,
    )
    driver.tick()
    driver.tick()
    assert campaigns_of(runtime.sessions, quiet) == ["Win back"]
    assert campaigns_of(runtime.sessions, busy) == []

    # After the enrollment ended, the next sweeps respect `reenter after 10 days`
    clock.advance(timedelta(days=2))
    driver.tick()
    assert campaigns_of(runtime.sessions, quiet) == ["Win back"]
    clock.advance(timedelta(days=9))
    driver.tick()
    assert campaigns_of(runtime.sessions, quiet) == ["Win back", "Win back"]


def test_suppressed_leads_are_not_enrolled(runtime: Runtime) -> None:
    driver = Driver(runtime)
    lead_id = add_lead(runtime.sessions, unsubscribed_at=MONDAY)
    driver.tick()
    assert campaigns_of(runtime.sessions, lead_id) == []
    with runtime.sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None and lead.triggers_checked_at is not None


def test_concurrent_checks_of_one_lead_enroll_it_once(runtime: Runtime) -> None:
    lead_id = add_lead(runtime.sessions)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def check() -> None:
        hooks = Driver(runtime, ListQueue()).hooks
        barrier.wait()
        try:
            hooks.on_lead(lead_id, True)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert campaigns_of(runtime.sessions, lead_id) == ["Hello"]


def test_the_default_hooks_for_the_tracking_service_read_the_environment(
    db_url: str, deployed: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nurture.runtime import process

    monkeypatch.setenv("NURTURE_DATABASE_URL", db_url)
    monkeypatch.delenv("NURTURE_BROKER_URL", raising=False)
    monkeypatch.setattr(process, "_hooks", None)
    lead_id = add_lead(deployed)
    try:
        process.on_lead(lead_id, True)  # no broker: enrolled now, run by the next poll
        process.on_wake([])
    finally:
        hooks = process._hooks
        assert hooks is not None
        hooks.sessions.kw["bind"].dispose()
    assert campaigns_of(deployed, lead_id) == ["Hello"]


SEGMENTED = """\
segment "trial gone quiet"
  tagged "trial" and not event "pricing_viewed" within 30 days

campaign "Trial nudge"
  enroll when segment "trial gone quiet"
  send email "t/more"
"""


@pytest.fixture
def segmented(sessions: sessionmaker[Session], tmp_path: Path, clock: VirtualClock) -> Path:
    file = write_campaign(tmp_path / "segmented", SEGMENTED, "segmented.nurture")
    deploy_sources(sessions, {str(file): file.read_text()}, clock.now())
    return file


def nudged(runtime: Runtime, lead_id: int) -> int:
    """How often the lead entered "Trial nudge" (the `Hello` flow enrolls every new lead too)."""
    return campaigns_of(runtime.sessions, lead_id).count("Trial nudge")


def test_a_lead_that_drifts_into_a_segment_enrolls_on_the_sweep(
    runtime: Runtime, segmented: Path, clock: VirtualClock
) -> None:
    # Given a trial lead who viewed pricing 20 days ago: not in the segment yet
    driver = Driver(runtime)
    drifting = add_lead(runtime.sessions, created_at=MONDAY - timedelta(days=25))
    other = add_lead(runtime.sessions, "other@client.example", phone=None)
    with runtime.sessions() as session, session.begin():
        session.add(Tag(lead_id=drifting, tag="trial", tagged_at=MONDAY - timedelta(days=25)))
        record_event(session, drifting, "custom", "pricing_viewed", MONDAY - timedelta(days=20))
    driver.tick()
    assert nudged(runtime, drifting) == 0

    # When eleven quiet days pass, nothing happening to the lead at all
    clock.advance(timedelta(days=11))
    driver.tick()

    # Then the sweep finds it in the segment and enrolls it, once
    assert nudged(runtime, drifting) == 1
    clock.advance(timedelta(days=1))
    driver.tick()
    assert nudged(runtime, drifting) == 1
    assert nudged(runtime, other) == 0


def test_a_sweep_that_fills_a_batch_sweeps_again_on_the_next_tick(
    settings: Settings, clock: VirtualClock, flows: Path, channel: RecordingChannel
) -> None:
    # Given five quiet leads and batches of two
    runtime = Runtime.start(
        settings.with_changes(batch_size=2), clock, channels=lambda: {"email": channel}
    )
    try:
        quiet = [
            add_lead(
                runtime.sessions,
                f"quiet{n}@client.example",
                phone=None,
                created_at=MONDAY - timedelta(days=40),
                triggers_checked_at=MONDAY,
            )
            for n in range(5)
        ]
        scheduler = Driver(runtime).scheduler

        # When one scheduler ticks four times with no time passing
        enrolled = [len(scheduler.tick().enrolled) for _ in range(4)]

        # Then it swept a batch a tick while batches came back full, then waits its interval
        assert enrolled == [2, 2, 1, 0]
        assert all(campaigns_of(runtime.sessions, q) == ["Win back"] for q in quiet)
    finally:
        runtime.close()
