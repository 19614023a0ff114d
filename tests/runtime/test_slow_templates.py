"""A campaign whose template renders until its time limit stalls nothing else.

No transaction is open while a template renders (`nurture.runtime.executor`),
so a slow campaign holds no row lock on PostgreSQL and no write lock on
SQLite; its touches fail with the reason while the other campaign's leads get
their mail, once each. On PostgreSQL + Redis with a ``nurture worker``
process, a probe keeps taking the slow enrollments' rows ``FOR UPDATE`` while
they render and never waits out its lock timeout (the render limit). With
``nurture run`` on SQLite, the run logs no "database is locked" and ends when
``--for`` says.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from nurture.engine.state import EnrollmentState
from nurture.models import Delivery, Enrollment, Lead
from nurture.runtime.deploying import campaign_files, deploy_sources
from nurture.runtime.embedded import DRAIN_SECONDS
from nurture.runtime.loading import Graphs, columns_of
from tests.runtime.cluster import NURTURE, Cluster, environment
from tests.runtime.services import SmtpServer

pytestmark = pytest.mark.slow

SLOW_TEMPLATE = """\
{% block subject %}Slow{% endblock %}
{% block text %}{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}\
{% endfor %}{{ unsubscribe_url }}{% endblock %}
"""
FAST_TEMPLATE = """\
{% block subject %}Hello {{ lead.first_name }}{% endblock %}
{% block text %}Hi {{ lead.first_name }}. {{ unsubscribe_url }}{% endblock %}
"""
CAMPAIGNS = {
    "slow.nurture": 'campaign "Slow"\n  enroll when lead created\n  send email "t/slow"\n',
    "fast.nurture": 'campaign "Fast"\n  enroll when lead created\n  send email "t/fast"\n',
}
RENDER_SECONDS = 1.0
"""The render limit in these tests: the slow template takes all of it, every time."""
SLOW_REASON = f"rendering took longer than {RENDER_SECONDS:g} s"
SLOW, FAST = 30, 10
"""Leads in each campaign on PostgreSQL."""
BATCH = 10
SETTLE_WITHIN = 120.0


def write_campaigns(folder: Path) -> Path:
    """The two campaigns and their templates in `folder`."""
    templates = folder / "templates" / "t"
    templates.mkdir(parents=True)
    (templates / "slow.email.j2").write_text(SLOW_TEMPLATE, encoding="utf-8")
    (templates / "fast.email.j2").write_text(FAST_TEMPLATE, encoding="utf-8")
    for name, source in CAMPAIGNS.items():
        (folder / name).write_text(source, encoding="utf-8")
    return folder


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


def enroll_due(sessions: sessionmaker[Session], now: datetime) -> dict[str, list[int]]:
    """`SLOW` leads in "Slow" and `FAST` in "Fast", mixed in every batch (one in four is
    fast), all due `now`; the enrollment ids by campaign."""
    enrolled: dict[str, list[int]] = {"Slow": [], "Fast": []}
    with sessions() as session, session.begin():
        versions = {v.campaign: v for v in Graphs().current(session)}
        for n in range(SLOW + FAST):
            campaign = "Fast" if n % 4 == 3 else "Slow"
            version = versions[campaign]
            lead = {"email": f"lead{n}@client.example", "first_name": f"Lead{n}"}
            lead_id = session.scalar(
                insert(Lead)
                .values(**lead, created_at=now, updated_at=now, triggers_checked_at=now)
                .returning(Lead.id)
            )
            start = columns_of(EnrollmentState.start(0, version.graph, now))
            enrollment = session.scalar(
                insert(Enrollment)
                .values(lead_id=lead_id, campaign_version_id=version.id, entered_at=now, **start)
                .returning(Enrollment.id)
            )
            assert enrollment is not None
            enrolled[campaign].append(enrollment)
    return enrolled


def statuses(sessions: sessionmaker[Session]) -> dict[str, dict[str, int]]:
    """Delivery rows by template and status."""
    with sessions() as session:
        rows = session.execute(
            select(Delivery.template, Delivery.status, func.count()).group_by(
                Delivery.template, Delivery.status
            )
        ).all()
    found: dict[str, dict[str, int]] = {}
    for template, status, count in rows:
        found.setdefault(template, {})[status] = count
    return found


def locks_within(sessions: sessionmaker[Session], ids: list[int], seconds: float) -> bool:
    """Whether a transaction can take the rows of enrollments `ids` FOR UPDATE, waiting at
    most `seconds` for whoever holds them."""
    with sessions() as session, session.begin():
        session.execute(text(f"SET LOCAL lock_timeout = '{int(seconds * 1000)}ms'"))
        try:
            session.execute(
                select(Enrollment.id).where(Enrollment.id.in_(ids)).with_for_update()
            ).all()
        except OperationalError as e:
            if "lock timeout" not in str(e):
                raise
            return False
    return True


def test_a_slow_template_on_postgresql_holds_no_lock_and_stalls_no_other_campaign(
    pg_url: str,
    pg_sessions: sessionmaker[Session],
    redis_url: str,
    smtp: SmtpServer,
    tmp_path: Path,
) -> None:
    # Given a campaign whose template renders until its limit and a healthy one, their
    # leads mixed in every batch, and a worker process (4 threads) with a scheduler
    folder = write_campaigns(tmp_path / "campaigns")
    deploy_sources(pg_sessions, campaign_files([folder]), datetime.now(UTC))
    env = environment(pg_url, redis_url, smtp.url(), lease=4, batch=BATCH)
    env["NURTURE_RENDER_SECONDS"] = str(RENDER_SECONDS)
    logs = tmp_path / "logs"
    logs.mkdir()
    cluster = Cluster(env, logs)
    try:
        cluster.start(workers=1, threads=4)
        deadline = time.monotonic() + 60
        while not cluster.workers[0].ready:
            assert time.monotonic() < deadline, cluster.logs()
            time.sleep(0.1)

        # When they are all due, and a probe takes the slow enrollments' rows FOR UPDATE
        # again and again while they render
        enrolled = enroll_due(pg_sessions, datetime.now(UTC))
        started = time.monotonic()
        probes, blocked, rendering = 0, 0, 0
        fast_done = slow_done = None
        while fast_done is None or slow_done is None:
            now = statuses(pg_sessions)
            slow_left = SLOW - now.get("t/slow", {}).get("failed", 0)
            if fast_done is None and now.get("t/fast", {}).get("sent", 0) == FAST:
                fast_done = time.monotonic()
            if slow_done is None and slow_left == 0:
                slow_done = time.monotonic()
            if slow_left:
                rendering += 1
                probes += 1
                blocked += not locks_within(pg_sessions, enrolled["Slow"], RENDER_SECONDS * 2)
            assert time.monotonic() - started < SETTLE_WITHIN, f"{now}\n{cluster.logs()}"
            time.sleep(0.2)
    finally:
        cluster.stop()

    # Then the probe never waited out its timeout: no row was locked while a template rendered
    assert rendering >= 3, "the slow touches failed before the probe could look"
    assert blocked == 0, f"{blocked} of {probes} probes found the rows locked for 2 s"
    # and the healthy campaign's mail all went out, once each, before the slow ones were done
    assert fast_done < slow_done, "the healthy leads waited for the slow template"
    received = smtp.message_ids()
    assert sorted(received.values()) == [1] * FAST, received
    final = statuses(pg_sessions)
    assert final == {"t/fast": {"sent": FAST}, "t/slow": {"failed": SLOW}}, final
    # and every slow touch failed with the reason
    with pg_sessions() as session:
        errors = session.scalars(select(Delivery.error).where(Delivery.template == "t/slow"))
        assert all(SLOW_REASON in (e or "") for e in errors)
        done = session.scalar(select(func.count()).where(Enrollment.state == "done"))
    assert done == SLOW + FAST


DEMO_LEADS = 60
RUN_FOR = 10.0


def test_a_slow_template_in_nurture_run_on_sqlite_locks_nothing_and_ends_on_time(
    tmp_path: Path,
) -> None:
    # Given the two campaigns and 60 demo leads, each in both, on SQLite
    write_campaigns(tmp_path / "campaigns")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    env.update(
        NURTURE_DATABASE_URL=f"sqlite:///{tmp_path / 'nurture.db'}",
        NURTURE_OUTBOX=str(tmp_path / "outbox"),
        NURTURE_SECRET_KEY="slow-template-test-secret-0123456789abcdef",
        NURTURE_RENDER_SECONDS=str(RENDER_SECONDS),
        PYTHONUNBUFFERED="1",
    )
    args = ["run", "campaigns", "--no-tracking", "--demo-leads", str(DEMO_LEADS)]
    args += ["--seed", "1", "--for", f"{RUN_FOR:g}s"]

    # When it runs for 10 s (the slow touches would take a minute to render one after another)
    lines, looping = [], None
    with subprocess.Popen(
        [NURTURE, *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as run:
        assert run.stdout is not None
        for line in run.stdout:
            if looping is None and " UTC: " in line:  # the first progress line: polling began
                looping = time.monotonic()
            lines.append(line)
        code = run.wait(timeout=180)
    took = time.monotonic() - (looping or 0)
    output = "".join(lines)

    # Then it ended when --for said (after the drain of the batches in flight), with no
    # "database is locked" on the way
    assert code == 0, output
    assert "database is locked" not in output, output
    assert "Traceback" not in output, output
    assert looping is not None, output
    assert took < RUN_FOR + DRAIN_SECONDS + 15, f"the run took {took:.0f} s\n{output}"
    # and every healthy lead got its mail, while no slow touch went out
    connection = sqlite3.connect(tmp_path / "nurture.db")
    try:
        rows = connection.execute(
            "SELECT template, status, error FROM deliveries ORDER BY template"
        ).fetchall()
    finally:
        connection.close()
    fast = [status for template, status, _ in rows if template == "t/fast"]
    slow = [(status, error) for template, status, error in rows if template == "t/slow"]
    assert fast == ["sent"] * DEMO_LEADS, output
    assert slow and all(s in ("failed", "pending") for s, _ in slow), slow
    assert all(SLOW_REASON in (e or "") for s, e in slow if s == "failed"), slow
    assert len(list((tmp_path / "outbox").rglob("*.eml"))) == DEMO_LEADS
