"""Driving the runtime by hand in tests: a scheduler whose queue is a list, run on demand."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from channels import OutboundMessage, Receipt
from nurture.models import Delivery, Enrollment
from nurture.runtime.observer import BatchReport
from nurture.runtime.process import Hooks, Runtime
from nurture.runtime.scheduler import Scheduler


class ProcessDied(BaseException):
    """Raised by a channel to stop a job with its message on the wire, as a process death
    would: the message went out and no answer comes back (a BaseException: nothing catches
    it on the way out)."""


def dies_on_the_wire(message: OutboundMessage) -> Receipt:
    """A `RecordingChannel` answer: the message is recorded, then the process 'dies'."""
    raise ProcessDied(message.message_id)


@dataclass
class ListQueue:
    """An enqueue that keeps the messages: (ids, lease) pairs."""

    messages: list[tuple[list[int], str | None]] = field(default_factory=list)

    def __call__(self, ids: Sequence[int], lease: str | None = None) -> None:
        self.messages.append((list(ids), lease))

    def take(self) -> list[tuple[list[int], str | None]]:
        taken, self.messages = self.messages, []
        return taken


@dataclass
class Driver:
    """The scheduler, the hooks and the executor of one runtime, run step by step."""

    runtime: Runtime
    queue: ListQueue = field(default_factory=ListQueue)

    @property
    def scheduler(self) -> Scheduler:
        return Scheduler(
            self.runtime.sessions,
            self.runtime.clock,
            self.runtime.settings,
            self.queue,
            graphs=self.runtime.graphs,
        )

    @property
    def hooks(self) -> Hooks:
        return Hooks(
            self.runtime.sessions, self.runtime.clock, self.queue, graphs=self.runtime.graphs
        )

    def tick(self) -> list[BatchReport]:
        """One scheduler poll, then every message it enqueued, run."""
        self.scheduler.tick()
        return self.drain()

    def drain(self) -> list[BatchReport]:
        reports = []
        while self.queue.messages:
            for ids, lease in self.queue.take():
                reports.append(self.runtime.executor.run(ids, lease))
        return reports


def deliveries(sessions: sessionmaker[Session]) -> list[Delivery]:
    with sessions() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def enrollments(sessions: sessionmaker[Session]) -> list[Enrollment]:
    with sessions() as session:
        return list(session.scalars(select(Enrollment).order_by(Enrollment.id)))


def lease_runs_out_while_sending(
    sessions: sessionmaker[Session], sent: Sequence[OutboundMessage]
) -> tuple[Callable[[OutboundMessage], Receipt], list[int]]:
    """A channel's answer that, at the batch's first send, lets another job claim every
    enrollment claimed now (as when the lease runs out mid-send), and the count it took."""
    stolen: list[int] = []

    def respond(message: OutboundMessage) -> Receipt:
        if not stolen:
            with sessions() as session, session.begin():
                taken = session.execute(
                    update(Enrollment)
                    .where(Enrollment.claimed_by.is_not(None))
                    .values(claimed_by="worker:another")
                )
                stolen.append(int(getattr(taken, "rowcount", 0)))
        return Receipt.sent(f"recorded-{len(sent)}")

    return respond, stolen
