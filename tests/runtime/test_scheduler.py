"""The scheduler: batches, leases, and a broker that goes away."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from channels import RecordingChannel
from nurture.engine.clock import VirtualClock
from nurture.runtime.process import Runtime
from nurture.runtime.scheduler import Scheduler
from tests.runtime.conftest import add_lead
from tests.runtime.helpers import Driver, ListQueue


class Down(ListQueue):
    """A broker that refuses everything while `down`."""

    down = True

    def __call__(self, ids: Sequence[int], lease: str | None = None) -> None:
        if self.down:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        super().__call__(ids, lease)


def test_due_enrollments_go_out_in_batches_of_the_configured_size(runtime: Runtime) -> None:
    for n in range(7):
        add_lead(runtime.sessions, f"lead{n}@client.example", phone=None)
    queue = ListQueue()
    settings = runtime.settings.with_changes(batch_size=3)
    report = Scheduler(runtime.sessions, runtime.clock, settings, queue).tick()
    assert [len(ids) for ids, _lease in queue.messages] == [3, 3, 1]
    assert (report.checked, len(report.enrolled), report.enqueued) == (7, 7, 7)
    assert len({lease for _ids, lease in queue.messages}) == 3


def test_a_full_backlog_stops_claiming(runtime: Runtime) -> None:
    add_lead(runtime.sessions)
    queue = ListQueue()
    scheduler = Scheduler(
        runtime.sessions, runtime.clock, runtime.settings, queue, backlog=lambda: 64
    )
    assert scheduler.tick().enqueued == 0


def test_work_claimed_while_the_broker_was_down_comes_back_when_the_lease_runs_out(
    runtime: Runtime, clock: VirtualClock, channel: RecordingChannel
) -> None:
    # Given the broker refuses the first batch
    add_lead(runtime.sessions)
    queue = Down()
    scheduler = Scheduler(runtime.sessions, clock, runtime.settings, queue)
    report = scheduler.tick()
    assert report.enqueued == 0 and report.failed is not None
    assert "Connection refused" in report.failed

    # When it is back, nothing is enqueued until the lease of the lost batch runs out
    queue.down = False
    assert scheduler.tick().enqueued == 0
    clock.advance(timedelta(seconds=61))
    assert scheduler.tick().enqueued == 1

    # and then it runs once
    driver = Driver(runtime, queue)
    driver.drain()
    assert len(channel.messages) == 1
