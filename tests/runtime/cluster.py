"""Worker and scheduler processes for the fault tests: started, killed with SIGKILL or
stopped with SIGTERM, restarted.

Each process is ``nurture worker`` or ``nurture scheduler`` in its own
session (process group), so ``kill -9`` of the group takes Dramatiq's main
process and its worker processes down at once, as a machine failure would.
Their output goes to a log file per process, shown when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from nurture.engine.state import EnrollmentState
from nurture.models import Delivery, Enrollment, Lead
from nurture.runtime.loading import Graphs, columns_of

NURTURE = str(Path(sys.executable).with_name("nurture"))
REPO = Path(__file__).parents[2]


@dataclass
class Proc:
    name: str
    args: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    started: float = 0.0

    def start(self, env: dict[str, str]) -> None:
        with self.log.open("ab") as out:
            out.write(f"\n=== start {' '.join(self.args)} at {time.time():.3f}\n".encode())
            self.popen = subprocess.Popen(
                [NURTURE, *self.args],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started = time.monotonic()

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def ready(self) -> bool:
        """Whether the worker process started last has said it is ready for messages."""
        text = self.log.read_text(errors="replace")
        return "ready for action" in text.rpartition("=== start")[2]

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown, no cleanup, work in flight lost."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def terminate(self, within: float) -> float:
        """SIGTERM the whole process group, as systemd does; the seconds it took to exit."""
        assert self.popen is not None
        started = time.monotonic()
        os.killpg(self.popen.pid, signal.SIGTERM)
        self.popen.wait(timeout=within)
        return time.monotonic() - started

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not end within 10 s."""
        if self.popen is None or self.popen.poll() is not None:
            self.kill()
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            self.kill()
        self.kill()  # any straggler in the group


@dataclass
class Cluster:
    """A scheduler and some workers against one database and one Redis."""

    env: dict[str, str]
    folder: Path
    workers: list[Proc] = field(default_factory=list)
    scheduler: Proc | None = None
    kills: int = 0

    def start(self, workers: int, processes: int = 1, threads: int = 4) -> None:
        self.scheduler = Proc(
            "scheduler", ["scheduler", "--interval", "0.2"], self.folder / "scheduler.log"
        )
        self.scheduler.start(self.env)
        for n in range(workers):
            args = ["worker", "--processes", str(processes), "--threads", str(threads)]
            proc = Proc(f"worker{n}", args, self.folder / f"worker{n}.log")
            proc.start(self.env)
            self.workers.append(proc)

    def kill_and_restart(self, proc: Proc) -> None:
        proc.kill()
        self.kills += 1
        proc.start(self.env)

    def stop(self) -> None:
        """SIGTERM every process at once, then wait for each (SIGKILL after 10 s in all): one
        after the other, each worker's graceful stop would add up."""
        procs = [*self.workers, *([self.scheduler] if self.scheduler else [])]
        for proc in procs:
            if proc.popen is not None and proc.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in procs:
            if proc.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(timeout=max(deadline - time.monotonic(), 0.1))
            proc.kill()  # what did not stop in time, and any straggler in the group

    def wait(self, ready: Callable[[], object], seconds: float, what: str) -> None:
        """Wait until `ready()` is true; fail naming `what`, with the logs, after `seconds`."""
        deadline = time.monotonic() + seconds
        while not ready():
            assert time.monotonic() < deadline, f"timed out waiting for {what}\n{self.logs()}"
            time.sleep(0.1)

    def settle(
        self, sessions: sessionmaker[Session], touches: int, started: float, within: float
    ) -> Tally:
        """Wait until every touch is sent or unknown; restart workers that exited meanwhile."""
        while True:
            now = tally(sessions, touches)
            if now.settled:
                return now
            for worker in self.workers:
                if not worker.alive:
                    worker.start(self.env)
            assert time.monotonic() - started < within, f"{now}\n{self.logs()}"
            time.sleep(0.5)

    def logs(self) -> str:
        parts = []
        for log in sorted(self.folder.glob("*.log")):
            text = log.read_text(errors="replace")
            parts.append(f"--- {log.name} (last 3000 characters)\n{text[-3000:]}")
        return "\n".join(parts)


def environment(
    db_url: str, broker_url: str, smtp_url: str, *, lease: float = 3, batch: int = 25
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    env.update(
        NURTURE_DATABASE_URL=db_url,
        NURTURE_BROKER_URL=broker_url,
        NURTURE_SMTP_URL=smtp_url,
        NURTURE_SECRET_KEY="fault-test-secret-0123456789abcdef0123456789",
        NURTURE_BASE_URL="http://127.0.0.1:9",
        NURTURE_LEASE_SECONDS=str(lease),
        NURTURE_BATCH_SIZE=str(batch),
        NURTURE_SEND_CONCURRENCY="10",
        NURTURE_RETRY_SECONDS="0.5",
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass(frozen=True)
class Tally:
    due: int
    sent: int
    unknown: int
    pending: int
    other: int
    done: int

    @property
    def settled(self) -> bool:
        """Every touch decided (sent or unknown), none in flight, every sent one finished."""
        return self.pending == 0 and self.sent + self.unknown == self.due and self.done == self.sent


def tally(sessions: sessionmaker[Session], due: int) -> Tally:
    with sessions() as session:
        counts = dict(
            session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
        )
        done = session.scalar(select(func.count()).where(Enrollment.state == "done")) or 0
    known = {"sent", "unknown", "pending"}
    return Tally(
        due,
        counts.get("sent", 0),
        counts.get("unknown", 0),
        counts.get("pending", 0),
        sum(n for s, n in counts.items() if s not in known),
        done,
    )


def seed_due(sessions: sessionmaker[Session], count: int, now: datetime) -> None:
    """`count` leads already enrolled in the current campaign, all due at `now`."""
    with sessions() as session, session.begin():
        [version] = Graphs().current(session)
        lead_ids = session.scalars(
            insert(Lead).returning(Lead.id),
            [
                {
                    "email": f"lead{n}@client.example",
                    "first_name": f"Lead{n}",
                    "created_at": now,
                    "updated_at": now,
                    "triggers_checked_at": now,
                }
                for n in range(count)
            ],
        ).all()
        start = columns_of(EnrollmentState.start(0, version.graph, now))
        session.execute(
            insert(Enrollment),
            [
                {"lead_id": lead_id, "campaign_version_id": version.id, "entered_at": now, **start}
                for lead_id in lead_ids
            ],
        )
