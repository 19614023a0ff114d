"""Exactly once: a send whose answer is lost is ``unknown``, never sent again; and only
the sends handed to a channel can be."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import timedelta

import pytest

from channels import OutboundMessage, Receipt, RecordingChannel
from nurture.config import Settings
from nurture.engine.clock import VirtualClock
from nurture.runtime.observer import Observer
from nurture.runtime.process import Runtime
from tests.runtime.conftest import CHANNELS, add_lead
from tests.runtime.helpers import Driver, deliveries, enrollments
from tests.runtime.services import SmtpServer


@pytest.fixture
def late_smtp() -> Iterator[SmtpServer]:
    """An SMTP server that stores each message, then says 250 only after 1 s."""
    server = SmtpServer(late=1.0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_runtime(
    settings: Settings, clock: VirtualClock, late_smtp: SmtpServer, deployed: object
) -> Iterator[Runtime]:
    """A runtime sending email to `late_smtp`, giving up on a reply after 0.3 s."""
    runtime = Runtime.start(replace(settings, smtp_url=late_smtp.url(timeout=0.3)), clock)
    yield runtime
    runtime.close()


def test_a_late_final_reply_leaves_the_touch_unknown_and_it_is_never_resent(
    smtp_runtime: Runtime, clock: VirtualClock, late_smtp: SmtpServer
) -> None:
    # Given a lead whose first touch the server stores but answers after the client's timeout
    driver = Driver(smtp_runtime)
    add_lead(smtp_runtime.sessions)

    # When the touch goes out, and the enrollment is looked at again and again
    [report] = driver.tick()
    for _ in range(3):
        clock.advance(timedelta(minutes=10))
        driver.tick()

    # Then it is unknown (maybe delivered), the enrollment is held, and it reached the server once
    assert report.unknown == 1 and report.retrying == 0
    [row] = deliveries(smtp_runtime.sessions)
    assert row.status == "unknown" and row.attempts == 1
    assert "after DATA: the message may have been delivered" in (row.error or "")
    [enrollment] = enrollments(smtp_runtime.sessions)
    assert enrollment.state == "active" and enrollment.cursor == "n1"
    assert late_smtp.message_ids() == {row.message_id: 1}


class Stuck(RecordingChannel):
    """Answers at once, except the third message: that one hangs until `free` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.free = threading.Event()

    async def send(self, message: OutboundMessage) -> Receipt:
        receipt = await super().send(message)
        if len(self.messages) == 3:
            while not self.free.is_set():
                await asyncio.sleep(0.01)
        return receipt


def _wait(until: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not until():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_only_the_send_on_the_wire_is_unknown_when_a_job_stops_mid_batch(
    settings: Settings, clock: VirtualClock, deployed: object
) -> None:
    # Given six new leads, and a process sending one at a time whose third send hangs
    one_at_a_time = replace(settings, send_concurrency=1)
    stuck = Stuck()
    first = Runtime.start(one_at_a_time, clock, channels=lambda: dict.fromkeys(CHANNELS, stuck))
    other = RecordingChannel()
    second = Runtime.start(one_at_a_time, clock, channels=lambda: dict.fromkeys(CHANNELS, other))
    try:
        for n in range(6):
            add_lead(first.sessions, f"lead{n}@client.example", phone=f"+86139123456{n:02d}")
        job = threading.Thread(target=Driver(first).tick)
        job.start()
        _wait(lambda: len(stuck.messages) == 3)

        # When its lease runs out with the third on the wire, and another process runs the work
        clock.advance(timedelta(seconds=61))
        reports = Driver(second).tick()

        # Then only the touch on the wire is unknown; the three never handed over go out now
        assert sum(r.unknown for r in reports) == 1
        assert sum(r.sent for r in reports) == 3
        assert sum(r.skipped for r in reports) == 2  # the two answered before the stop
        rows = deliveries(second.sessions)
        assert [r.status for r in rows].count("unknown") == 1

        # and when the hung send comes back at last, the first job sends nothing more
        stuck.free.set()
        job.join(timeout=20)
        assert not job.is_alive()
        statuses = {r.status for r in deliveries(second.sessions)}
    finally:
        stuck.free.set()
        first.close()
        second.close()
    sent = [m.message_id for m in stuck.messages + other.messages]
    assert sorted(sent) == sorted({r.message_id for r in rows}) and len(sent) == 6
    assert statuses == {"sent"}  # the hung one's answer too, stored late


class Gate(RecordingChannel):
    """Records each message; the first `hold` wait for `open` (an event on the send loop, so
    they all come back in one turn of it)."""

    def __init__(self, hold: int) -> None:
        super().__init__()
        self.hold = hold
        self.gate: asyncio.Event | None = None

    async def send(self, message: OutboundMessage) -> Receipt:
        receipt = await super().send(message)
        if len(self.messages) <= self.hold:
            self.gate = self.gate or asyncio.Event()
            await self.gate.wait()
        return receipt

    async def open(self) -> None:
        self.gate = self.gate or asyncio.Event()
        self.gate.set()


class Batches(Observer):
    """Counts the batches that reached their send step."""

    def __init__(self) -> None:
        self.sending = 0

    def before_send(self, messages: Sequence[OutboundMessage]) -> None:
        self.sending += 1


def test_two_jobs_of_one_process_racing_for_a_touch_send_it_once(
    settings: Settings, clock: VirtualClock, deployed: object
) -> None:
    # Given a process sending two at a time, whose job A has two sends on the wire (held)
    # and a third touch queued behind them for a slot
    gate, batches = Gate(hold=2), Batches()
    runtime = Runtime.start(
        replace(settings, send_concurrency=2),
        clock,
        channels=lambda: dict.fromkeys(CHANNELS, gate),
        observer=batches,
    )
    jobs: list[threading.Thread] = []
    try:
        for n in range(3):
            add_lead(runtime.sessions, f"lead{n}@client.example", phone=f"+86139123456{n:02d}")
        jobs.append(threading.Thread(target=Driver(runtime).tick))
        jobs[0].start()
        _wait(lambda: len(gate.messages) == 2)

        # When A's lease runs out and job B of the same process takes the touches over, its
        # send of the third queued behind A's, and both get their slots in one turn
        clock.advance(timedelta(seconds=61))
        jobs.append(threading.Thread(target=Driver(runtime).tick))
        jobs[1].start()
        _wait(lambda: batches.sending == 2)
        time.sleep(0.3)  # B's send reaches the slots' queue
        runtime.send_loop.run(gate.open())
        for job in jobs:
            job.join(timeout=20)
        rows = deliveries(runtime.sessions)
    finally:
        runtime.send_loop.run(gate.open())
        for job in jobs:
            job.join(timeout=20)
        runtime.close()

    # Then only one of them handed the third touch over: each touch reached the channel once
    sent = Counter(m.message_id for m in gate.messages)
    assert sent == Counter({r.message_id: 1 for r in rows}), sent
    assert {r.status for r in rows} == {"sent"}  # the held ones answered late, stored anyway
