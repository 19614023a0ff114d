"""`report campaign`'s A/B arms agree with what the engine did: leads run through a split by
the runtime, each arm's leads are the leads that got that arm's message."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nurture.engine.clock import VirtualClock
from nurture.models import Delivery, Tag
from nurture.reports import campaign_report
from nurture.runtime.deploying import deploy_sources
from nurture.runtime.process import Runtime
from tests.runtime.campaign import write_campaign
from tests.runtime.conftest import MONDAY, add_lead
from tests.runtime.helpers import Driver

AB = """\
campaign "AB"
  enroll when tagged "ab"
  split:
    30% "hello":
      send email "t/hello"
    70% "more":
      send email "t/more"
"""


def test_the_report_puts_each_lead_in_the_arm_the_engine_sent_it_down(
    runtime: Runtime, sessions: sessionmaker[Session], tmp_path: Path, clock: VirtualClock
) -> None:
    # Given a 30/70 split and 40 leads tagged into it, run by the runtime
    file = write_campaign(tmp_path / "ab", AB, "ab.nurture")
    deploy_sources(sessions, {str(file): file.read_text()}, clock.now())
    driver = Driver(runtime)
    for n in range(40):
        lead = add_lead(
            sessions, f"p{n}@client.example", phone=f"+86139{n:08d}", triggers_checked_at=MONDAY
        )
        with sessions() as session, session.begin():
            session.add(Tag(lead_id=lead, tag="ab", tagged_at=clock.now()))
    driver.tick()
    driver.tick()

    # When the campaign is reported
    with sessions() as session:
        sent = dict(
            session.execute(
                select(Delivery.template, func.count())
                .where(Delivery.status == "sent")
                .group_by(Delivery.template)
            ).all()
        )
        [split] = campaign_report(session, "AB").splits

    # Then each arm holds the leads that got its message, all 40 of them
    hello, more = split.arms
    assert (hello.label, more.label) == ("hello", "more")
    assert hello.leads == hello.sends == sent["t/hello"]
    assert more.leads == more.sends == sent["t/more"]
    assert hello.leads + more.leads == 40 and 0 < hello.leads < more.leads
