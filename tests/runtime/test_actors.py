"""The Dramatiq actor on the stub broker: thin, idempotent, run by real worker threads."""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from channels import RecordingChannel
from nurture.runtime import broker as brokers
from nurture.runtime import process
from nurture.runtime.embedded import _stub_broker
from nurture.runtime.process import Runtime
from nurture.runtime.scheduler import Scheduler
from tests.runtime.conftest import add_lead
from tests.runtime.helpers import Driver, deliveries


@pytest.fixture
def stub(runtime: Runtime) -> Iterator[StubBroker]:
    """The in-process broker with the actor declared on it, and `runtime` as the process's."""
    broker = _stub_broker()
    broker.flush_all()
    import nurture.runtime.actors  # noqa: F401

    process.install(runtime)
    yield broker
    process.install(None)
    broker.flush_all()


def test_the_actor_is_declared_on_the_installed_broker(stub: StubBroker) -> None:
    from nurture.runtime import actors

    assert actors.broker is stub is dramatiq.get_broker()
    assert stub.get_actor(brokers.ACTOR) is actors.run_enrollments
    assert actors.run_enrollments.options["max_retries"] == 0


def test_calling_the_actor_twice_with_the_same_ids_sends_once(
    stub: StubBroker, runtime: Runtime, channel: RecordingChannel
) -> None:
    from nurture.runtime.actors import run_enrollments

    driver = Driver(runtime)
    add_lead(runtime.sessions)
    driver.scheduler.tick()
    [(ids, lease)] = driver.queue.take()

    run_enrollments(ids, lease)
    run_enrollments(ids, lease)

    assert len(channel.messages) == 1
    assert [d.status for d in deliveries(runtime.sessions)] == ["sent"]


def test_worker_threads_run_what_the_scheduler_enqueues(
    stub: StubBroker, runtime: Runtime, channel: RecordingChannel
) -> None:
    # Given 30 new leads, batches of 7 and two worker threads
    settings = runtime.settings.with_changes(batch_size=7)
    for n in range(30):
        add_lead(runtime.sessions, f"lead{n}@client.example", phone=f"+86139000{n:05d}")
    queue = brokers.Queue(stub)
    scheduler = Scheduler(
        runtime.sessions,
        runtime.clock,
        settings,
        queue,
        backlog=queue.backlog,
        graphs=runtime.graphs,
    )
    worker = dramatiq.Worker(stub, queues={brokers.QUEUE}, worker_threads=2)
    worker.start()
    try:
        # When the scheduler polls and the workers drain the queue
        report = scheduler.tick()
        stub.join(brokers.QUEUE, timeout=30_000)
        worker.join()
    finally:
        worker.stop()

    # Then every lead got its first email once, in five messages of up to seven ids
    assert (report.enqueued, report.batches) == (30, 5)
    ids = [m.message_id for m in channel.messages]
    assert len(ids) == len(set(ids)) == 30
