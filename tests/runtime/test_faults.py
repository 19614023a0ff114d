"""Faults, with real parts: PostgreSQL, a broker, an SMTP server and `nurture worker` processes.

Each test runs on both brokers, ``[redis]`` and ``[rabbitmq]`` (the tests'
own servers, a namespace per test). Touches are due (2,000 on Redis, fewer
on RabbitMQ to keep CI short); while they go out, worker processes are
killed with SIGKILL again and again (restarted as a supervisor would), or
the broker dies (Redis shut down without saving; the RabbitMQ node killed
with SIGKILL) and is started again, or a worker's process group gets
SIGTERM twice. Afterwards every touch was delivered exactly once, counted
by Message-ID at the SMTP server, or is ``unknown``: never lost, never
doubled. ``unknown`` ones are at most the sends that were in flight in the
processes that died, and every one of them reached the server at most once.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nurture.models import Delivery
from nurture.runtime.deploying import campaign_files, deploy_sources
from tests.runtime.campaign import ONE_TOUCH, write_campaign
from tests.runtime.cluster import Cluster, Tally, environment, seed_due, tally
from tests.runtime.services import RabbitServer, RedisServer, SmtpServer

pytestmark = pytest.mark.slow

TOUCHES_ON = {"redis": 2000, "rabbitmq": 1000}
"""Touches due, by broker."""
WORKERS, THREADS, BATCH = 3, 4, 10
LEASE = 5.0
SHUTDOWN = 10.0
SETTLE_WITHIN = 150.0


@pytest.fixture
def slow_smtp() -> Iterator[SmtpServer]:
    """An SMTP server taking 20 ms a message, so the run lasts long enough to be hit."""
    server = SmtpServer(delay=0.02)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def touches(broker: str) -> int:
    return TOUCHES_ON[broker]


@pytest.fixture
def cluster(
    pg_url: str,
    pg_sessions: sessionmaker[Session],
    broker_url: str,
    touches: int,
    slow_smtp: SmtpServer,
    tmp_path: Path,
) -> Iterator[Cluster]:
    """A scheduler and three workers on the broker, started, with the touches due; stopped
    after."""
    file = write_campaign(tmp_path / "campaigns", ONE_TOUCH, "once.nurture")
    deploy_sources(pg_sessions, campaign_files([file]), datetime.now(UTC))
    env = environment(pg_url, broker_url, slow_smtp.url(), lease=LEASE, batch=BATCH)
    env["NURTURE_SEND_CONCURRENCY"] = "4"
    env["NURTURE_SHUTDOWN_SECONDS"] = str(SHUTDOWN)
    logs = tmp_path / "logs"
    logs.mkdir()
    cluster = Cluster(env, logs)
    try:
        cluster.start(workers=WORKERS, threads=THREADS)
        cluster.wait(lambda: all(w.ready for w in cluster.workers), 60, "workers to start")
        seed_due(pg_sessions, touches, datetime.now(UTC))
        yield cluster
    finally:
        cluster.stop()


def test_killing_workers_repeatedly_loses_and_doubles_nothing(
    cluster: Cluster, pg_sessions: sessionmaker[Session], slow_smtp: SmtpServer, touches: int
) -> None:
    # When a worker is killed (kill -9, the whole process group) every ~0.5 s while
    # touches are going out, and restarted at once
    rng = random.Random(7)
    started = time.monotonic()
    while cluster.kills < 10 and not tally(pg_sessions, touches).settled:
        time.sleep(rng.uniform(0.3, 0.7))
        ready = [w for w in cluster.workers if w.ready]
        if ready:
            cluster.kill_and_restart(rng.choice(ready))
        assert time.monotonic() - started < SETTLE_WITHIN, cluster.logs()
    final = cluster.settle(pg_sessions, touches, started, SETTLE_WITHIN)

    # Then every touch was delivered exactly once or is unknown
    assert cluster.kills >= 5, "the run ended before enough kills"
    _exactly_once(pg_sessions, slow_smtp, final, touches)
    in_flight = cluster.kills * THREADS * BATCH
    assert final.unknown <= in_flight, f"{final.unknown} unknown after {cluster.kills} kills"


def test_a_broker_restart_mid_run_loses_and_doubles_nothing(
    cluster: Cluster,
    pg_sessions: sessionmaker[Session],
    slow_smtp: SmtpServer,
    touches: int,
    broker: str,
    request: pytest.FixtureRequest,
) -> None:
    server: RedisServer | RabbitServer = request.getfixturevalue(f"{broker}_server")
    started = time.monotonic()
    try:
        # Given touches are going out
        enough = touches // 10
        cluster.wait(lambda: tally(pg_sessions, touches).sent >= enough, 60, f"{enough} sends")

        # When the broker goes away (Redis with every queued message; RabbitMQ killed, keeping
        # what it had written to disk), and comes back
        before = tally(pg_sessions, touches)
        assert not before.settled, "the run ended before the broker could be restarted"
        if isinstance(server, RedisServer):
            server.stop()  # the tests' own, not the machine's
        else:
            server.kill()
        time.sleep(2)
    finally:
        server.start()
    final = cluster.settle(pg_sessions, touches, started, SETTLE_WITHIN)

    # Then nothing was lost (the scheduler enqueued the work again) and nothing doubled
    _exactly_once(pg_sessions, slow_smtp, final, touches)
    assert final.unknown <= WORKERS * THREADS * BATCH


def test_sigterm_to_a_workers_process_group_stops_it_gracefully(
    cluster: Cluster, pg_sessions: sessionmaker[Session], slow_smtp: SmtpServer, touches: int
) -> None:
    # Given touches are going out
    started = time.monotonic()
    enough = touches // 10
    cluster.wait(lambda: tally(pg_sessions, touches).sent >= enough, 60, f"{enough} sends")
    assert not tally(pg_sessions, touches).settled, "the run ended before the stop"

    # When one worker's process group gets SIGTERM (systemd's default), mid-batch, and a
    # second SIGTERM while it drains (an impatient operator, or a supervisor's repeat)
    worker = cluster.workers[0]
    assert worker.popen is not None
    stopping = time.monotonic()
    os.killpg(worker.popen.pid, signal.SIGTERM)
    time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):  # it may be gone already
        os.killpg(worker.popen.pid, signal.SIGTERM)
    code = worker.popen.wait(timeout=SHUTDOWN + 10)
    took = time.monotonic() - stopping
    log = worker.log.read_text(errors="replace").rpartition("=== start")[2]
    worker.start(cluster.env)
    final = cluster.settle(pg_sessions, touches, started, SETTLE_WITHIN)

    # Then it stopped within the bound, exit code 0, and what it had in flight went out
    # once: nothing unknown, lost or doubled
    assert code == 0, log[-3000:]
    assert took < SHUTDOWN + 2, f"stopping took {took:.1f} s"
    _exactly_once(pg_sessions, slow_smtp, final, touches)
    assert final.unknown == 0, f"{final.unknown} unknown after a graceful stop"


def _exactly_once(
    sessions: sessionmaker[Session], smtp: SmtpServer, final: Tally, touches: int
) -> None:
    received = smtp.message_ids()
    doubled = {m: n for m, n in received.items() if n > 1}
    assert doubled == {}, f"{len(doubled)} touches delivered twice"
    with sessions() as session:
        rows = session.execute(select(Delivery.message_id, Delivery.status)).all()
    sent = {m for m, status in rows if status == "sent"}
    unknown = {m for m, status in rows if status == "unknown"}
    assert len(rows) == touches == final.sent + final.unknown  # one row per touch, none lost
    assert sent <= received.keys(), "a touch recorded as sent never reached the server"
    assert received.keys() <= sent | unknown, "the server got a touch nobody recorded"
