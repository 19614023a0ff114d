"""Which way leads went out of a split or a branch, counted by the runtime as it stores each
decision (`nurture.runtime.edges`), and read back onto the live picture
(`nurture graph --counts live`), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from channels.outbox import RecordingChannel
from nurture.cli import app
from nurture.engine.clock import VirtualClock
from nurture.models import CampaignVersion, Delivery, Enrollment, StepEdge, Tag
from nurture.runtime.deploying import deploy_sources
from nurture.runtime.edges import add_ways
from nurture.runtime.process import Runtime
from tests.runtime.campaign import write_campaign
from tests.runtime.conftest import MONDAY, add_lead
from tests.runtime.helpers import Driver, lease_runs_out_while_sending
from tests.runtime.test_split_report import AB

runner = CliRunner()


def _ab(sessions: sessionmaker[Session], tmp_path: Path, clock: VirtualClock) -> Path:
    file = write_campaign(tmp_path / "ab", AB, "ab.nurture")
    deploy_sources(sessions, {str(file): file.read_text()}, clock.now())
    for n in range(40):
        lead = add_lead(
            sessions, f"p{n}@client.example", phone=f"+86139{n:08d}", triggers_checked_at=MONDAY
        )
        with sessions() as session, session.begin():
            session.add(Tag(lead_id=lead, tag="ab", tagged_at=clock.now()))
    return file


def test_the_ways_out_of_a_split_are_counted_and_drawn(
    runtime: Runtime,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    clock: VirtualClock,
    db_url: str,
) -> None:
    # Given 40 leads run through a 30/70 split by the runtime
    file = _ab(sessions, tmp_path, clock)
    driver = Driver(runtime)
    driver.tick()
    driver.tick()
    driver.tick()  # nothing new to decide: nothing counted twice

    # When the ways are read, and drawn with production's numbers
    with sessions() as session:
        edges = {
            (a, b): n
            for a, b, n in session.execute(
                select(StepEdge.from_step, StepEdge.to_step, StepEdge.count)
            )
        }
        sent = dict(
            session.execute(select(Delivery.step_id, func.count()).group_by(Delivery.step_id)).all()
        )
    drawn = runner.invoke(app, ["graph", str(file), "--counts", "live", "--url", db_url])

    # Then each arm's way holds the leads that got its message, 40 in all
    assert sum(edges.values()) == 40
    assert {b: n for (_a, b), n in edges.items()} == sent
    assert drawn.exit_code == 0, drawn.output
    for (a, b), n in edges.items():
        assert f'{a} -->|"' in drawn.stdout and f' · {n}"| {b}' in drawn.stdout, drawn.stdout


def test_a_batch_whose_lease_ran_out_counts_no_way_and_the_rerun_counts_each_once(
    runtime: Runtime,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    clock: VirtualClock,
    channel: RecordingChannel,
) -> None:
    # Given 40 leads at the split, and a batch whose lease runs out while it sends: another
    # job claims its enrollments before it records
    _ab(sessions, tmp_path, clock)
    channel._respond, stolen = lease_runs_out_while_sending(sessions, channel.messages)
    driver = Driver(runtime)

    # When that batch records, and later the enrollments run again (the other job's lease
    # ran out too), as often as there is anything to do
    driver.tick()
    with sessions() as session:
        after_lost = session.scalar(select(func.count()).select_from(StepEdge))
    clock.advance(timedelta(hours=1))
    for _ in range(3):
        driver.tick()

    # Then the lost batch counted nothing, and each lead's way is counted once: 40 in all
    with sessions() as session:
        counted = session.scalar(select(func.sum(StepEdge.count)))
        states = set(session.scalars(select(Enrollment.state)))
    assert stolen and stolen[0] > 0
    assert after_lost == 0
    assert counted == 40
    assert states == {"done"}


def test_a_wait_at_a_branch_counts_the_way_once_it_is_taken(
    runtime: Runtime, sessions: sessionmaker[Session], clock: VirtualClock
) -> None:
    # Given the Hello campaign: a lead gets the first email, then waits at `if opened within 2
    # days` (no way taken yet, however often it is looked at)
    add_lead(sessions)
    driver = Driver(runtime)
    driver.tick()
    clock.advance(timedelta(days=1))
    driver.tick()
    with sessions() as session:
        waiting = session.scalar(select(func.count()).select_from(StepEdge))

    # When the two days pass without an open
    clock.advance(timedelta(days=2))
    driver.tick()
    driver.tick()

    # Then the `else` way is counted, once
    with sessions() as session:
        [(source, target, count)] = session.execute(
            select(StepEdge.from_step, StepEdge.to_step, StepEdge.count)
        ).all()
        nudged = session.scalars(select(Delivery.step_id).where(Delivery.channel == "sms")).one()
    assert waiting == 0
    assert (source, target, count) == ("n2", nudged, 1)  # n2: the `if`


def test_concurrent_batches_lose_no_count(
    sessions: sessionmaker[Session], tmp_path: Path, clock: VirtualClock
) -> None:
    # Given a deployed version and four workers adding the same ways at once
    file = write_campaign(tmp_path / "ab", AB, "ab.nurture")
    deploy_sources(sessions, {str(file): file.read_text()}, clock.now())
    with sessions() as session:
        version = session.scalars(select(CampaignVersion.id)).one()
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            for _ in range(25):
                with sessions() as session, session.begin():
                    add_ways(
                        session,
                        [(version, [("n1", "n2"), ("n1", "n3")]), (version, [("n1", "n2")])],
                    )
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Then every batch's counts are there: 4 workers × 25 batches
    with sessions() as session:
        counts = dict(session.execute(select(StepEdge.to_step, StepEdge.count)).all())
    assert failures == []
    assert counts == {"n2": 200, "n3": 100}
