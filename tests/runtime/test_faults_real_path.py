"""Exactly once on the real path, under faults, with the figures printed.

On each broker (``[redis]``, ``[rabbitmq]``), leads are imported from a CSV
file with ``nurture leads import`` (1,500; 1,000 on RabbitMQ); the scheduler
enrolls them (``enroll when lead created``); ``nurture worker``
processes send each one email at the defaults (batches of 250, 4 threads,
10 sends at once) to an SMTP server that stores every message and answers
one in `LATE_EVERY` after the client's timeout. Meanwhile workers are killed
with SIGKILL and stopped with SIGTERM to their process group, in turn, and
restarted. Then, counted by Message-ID at the server:

    delivered once, doubled, lost, unknown-and-delivered, unknown-and-never-sent,
    and the sends in flight at the kills (send concurrency x SIGKILLs)

are printed (``pytest -s``) and kept in every assertion message. The goal:
none doubled, none lost, and the ``unknown`` touches a crash left at most
the sends in flight at the kills (a late reply makes its own, maybe-delivered
``unknown``).
"""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nurture.models import Delivery
from nurture.runtime.deploying import campaign_files, deploy_sources
from tests.runtime.campaign import ONE_TOUCH, write_campaign
from tests.runtime.cluster import NURTURE, REPO, Cluster, environment, tally
from tests.runtime.services import SmtpServer

pytestmark = pytest.mark.slow

TOUCHES_ON = {"redis": 1500, "rabbitmq": 1000}
"""Leads imported (each one touch), by broker."""
WORKERS, THREADS, CONCURRENCY, BATCH = 2, 4, 10, 250
LEASE = 5.0
LATE_EVERY = 150
"""One message in this many is stored by the server and answered after the client gave up."""
EVENTS = 6
"""Stops while the touches go out: SIGKILL and process-group SIGTERM in turn."""
SETTLE_WITHIN = 240.0


@pytest.fixture
def late_smtp() -> Iterator[SmtpServer]:
    """50 ms a message; one in `LATE_EVERY` answered 2 s after storing it (the client waits 1 s)."""
    server = SmtpServer(delay=0.05, late=2.0, late_every=LATE_EVERY)
    server.start()
    yield server
    server.stop()


@dataclass(frozen=True)
class Figures:
    touches: int
    delivered_once: int
    doubled: int
    lost: int
    unknown_delivered: int
    unknown_never_sent: int
    unknown_late_reply: int
    unknown_after_crash: int
    in_flight_at_kills: int
    kills: int
    terms: int

    def __str__(self) -> str:
        return (
            f"{self.touches} touches: delivered once {self.delivered_once}, "
            f"doubled {self.doubled}, lost {self.lost}, "
            f"unknown-and-delivered {self.unknown_delivered}, "
            f"unknown-and-never-sent {self.unknown_never_sent} "
            f"(unknown after a late reply {self.unknown_late_reply}, after a crash "
            f"{self.unknown_after_crash}); in flight at the kills {self.in_flight_at_kills} "
            f"({CONCURRENCY} x {self.kills} SIGKILL; {self.terms} process-group SIGTERM)"
        )


def test_imported_leads_are_each_sent_once_through_kills_stops_and_late_replies(
    pg_url: str,
    pg_sessions: sessionmaker[Session],
    broker: str,
    broker_url: str,
    late_smtp: SmtpServer,
    tmp_path: Path,
) -> None:
    # Given a campaign that sends each new lead one email, and leads imported from CSV
    touches = TOUCHES_ON[broker]
    file = write_campaign(tmp_path / "campaigns", ONE_TOUCH, "once.nurture")
    deploy_sources(pg_sessions, campaign_files([file]), datetime.now(UTC))
    env = environment(pg_url, broker_url, late_smtp.url(timeout=1), lease=LEASE, batch=BATCH)
    env |= {"NURTURE_SEND_CONCURRENCY": str(CONCURRENCY), "NURTURE_SHUTDOWN_SECONDS": "15"}
    leads = tmp_path / "leads.csv"
    rows = "".join(f"lead{n}@globex.io,Lead{n}\n" for n in range(touches))
    leads.write_text("email,first_name\n" + rows, encoding="utf-8")
    imported = subprocess.run(
        [NURTURE, "leads", "import", str(leads)], env=env, cwd=REPO, capture_output=True
    )
    assert imported.returncode == 0, imported.stderr.decode()
    assert f"created      {touches:,}" in imported.stdout.decode(), imported.stdout.decode()
    (tmp_path / "logs").mkdir()
    cluster = Cluster(env, tmp_path / "logs")
    kills = terms = 0
    try:
        # When a scheduler and two workers run them, and workers are killed (SIGKILL) and
        # stopped (SIGTERM to the process group) in turn every 1-2 s, and restarted
        cluster.start(workers=WORKERS, threads=THREADS)
        cluster.wait(lambda: all(w.ready for w in cluster.workers), 60, "workers to start")
        started = time.monotonic()
        rng = random.Random(11)
        while kills + terms < EVENTS and not tally(pg_sessions, touches).settled:
            time.sleep(rng.uniform(1.0, 2.0))
            ready = [w for w in cluster.workers if w.ready]
            if not ready:
                continue
            worker = rng.choice(ready)
            if (kills + terms) % 2 == 0:
                cluster.kill_and_restart(worker)
                kills += 1
            else:
                worker.terminate(within=30)
                worker.start(env)
                terms += 1
        final = cluster.settle(pg_sessions, touches, started, SETTLE_WITHIN)
    finally:
        cluster.stop()

    # Then each touch reached the server once or is unknown; unknown after a crash at most
    # the sends that were in flight when the processes died
    figures = _figures(pg_sessions, late_smtp, touches, kills, terms)
    print(f"\nexactly once, real path: {figures}")
    assert kills + terms >= 4, f"the run ended before enough stops: {figures}"
    assert final.sent + final.unknown == touches, f"{final}; {figures}"
    assert figures.doubled == 0, str(figures)
    assert figures.lost == 0, str(figures)
    assert figures.unknown_after_crash <= figures.in_flight_at_kills, str(figures)
    assert figures.unknown_late_reply >= 1, f"no late reply was seen: {figures}"


def _figures(
    sessions: sessionmaker[Session], smtp: SmtpServer, touches: int, kills: int, terms: int
) -> Figures:
    received = smtp.message_ids()
    with sessions() as session:
        rows = session.execute(select(Delivery.message_id, Delivery.status, Delivery.error)).all()
    unknown = [(m, error or "") for m, status, error in rows if status == "unknown"]
    late = [m for m, error in unknown if "after DATA" in error]
    reached = [m for m, status, _ in rows if m in received or status == "unknown"]
    return Figures(
        touches=touches,
        delivered_once=sum(1 for n in received.values() if n == 1),
        doubled=sum(1 for n in received.values() if n > 1),
        lost=touches - len(reached),
        unknown_delivered=sum(1 for m, _ in unknown if m in received),
        unknown_never_sent=sum(1 for m, _ in unknown if m not in received),
        unknown_late_reply=len(late),
        unknown_after_crash=len(unknown) - len(late),
        in_flight_at_kills=CONCURRENCY * kills,
        kills=kills,
        terms=terms,
    )
