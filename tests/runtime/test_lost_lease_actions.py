"""A batch whose lease ran out while it sent leaves its decisions' other actions (score, tag,
MQL) to the job that holds the enrollments now: each is done once, by that job."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from channels.outbox import RecordingChannel
from nurture.engine.clock import VirtualClock
from nurture.models import Enrollment, Lead, Tag
from nurture.runtime.deploying import deploy_sources
from nurture.runtime.process import Runtime
from nurture.store.scoring import manual_score
from tests.runtime.campaign import write_campaign
from tests.runtime.conftest import MONDAY, add_lead
from tests.runtime.helpers import Driver, lease_runs_out_while_sending

SCORED = """\
campaign "Scored"
  enroll when tagged "go"
  send email "t/hello"
  score +5
  tag "greeted"
"""


def test_a_batch_that_lost_its_lease_leaves_the_actions_to_the_job_that_holds_them(
    runtime: Runtime,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    clock: VirtualClock,
    channel: RecordingChannel,
) -> None:
    # Given 10 leads whose first touch is followed by `score +5` and a tag, and a batch whose
    # lease runs out while it sends: another job claims its enrollments before it records
    file = write_campaign(tmp_path / "scored", SCORED, "scored.nurture")
    deploy_sources(sessions, {str(file): file.read_text()}, clock.now())
    for n in range(10):
        lead = add_lead(
            sessions, f"s{n}@client.example", phone=f"+86139{n:08d}", triggers_checked_at=MONDAY
        )
        with sessions() as session, session.begin():
            session.add(Tag(lead_id=lead, tag="go", tagged_at=clock.now()))
    channel._respond, stolen = lease_runs_out_while_sending(sessions, channel.messages)
    driver = Driver(runtime)

    # When that batch records, and the enrollments run again once the other job's lease ran
    # out too, as often as there is anything to do
    driver.tick()
    with sessions() as session:
        scored_by_the_lost_batch = sum(
            manual_score(a) for a in session.scalars(select(Lead.attributes))
        )
    clock.advance(timedelta(hours=1))
    for _ in range(3):
        driver.tick()

    # Then the lost batch did none of the actions, and each lead was scored and tagged once,
    # and emailed once
    with sessions() as session:
        scores = [manual_score(a) for a in session.scalars(select(Lead.attributes))]
        tagged = session.scalar(select(func.count()).where(Tag.tag == "greeted"))
        states = set(session.scalars(select(Enrollment.state)))
    assert stolen and stolen[0] > 0
    assert not scored_by_the_lost_batch
    assert scores == [5] * 10
    assert tagged == 10
    assert states == {"done"}
    assert len(channel.messages) == 10
