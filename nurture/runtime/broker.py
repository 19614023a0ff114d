"""The Dramatiq broker, set explicitly before any actor is declared.

Dramatiq makes a default broker (RabbitMQ) the first time an actor is
declared without one, a known trap (dramatiq issue #214). So the broker is
chosen here, from the settings, and installed with `dramatiq.set_broker`
before `nurture.runtime.actors` declares its actor on it:

- ``NURTURE_BROKER_URL=redis://...``: a `RedisBroker`, for `nurture worker`
  processes on any number of machines;
- unset: a `StubBroker`, whose queue lives in this process (``nurture run``
  consumes it with worker threads).

Messages carry ids only (`enqueue`); time never rides in a message: a wait
is the enrollment's ``next_run_at``, not a delayed message.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Final

import dramatiq
from dramatiq import Broker, Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from nurture.config import Settings

QUEUE: Final = "nurture"
ACTOR: Final = "nurture.run_enrollments"
"""The actor that runs a batch of enrollments (`nurture.runtime.actors.run_enrollments`)."""
NOTICES_ACTOR: Final = "nurture.send_notices"
"""The actor that sends owners' notices (`nurture.runtime.actors.send_notices`)."""

_lock = threading.Lock()
_installed: Broker | None = None


def make_broker(settings: Settings) -> Broker:
    """A Redis broker for `settings.broker_url`, else an in-process stub broker."""
    if settings.broker_url:
        return RedisBroker(url=settings.broker_url)  # type: ignore[no-untyped-call]
    return StubBroker()


def install(broker: Broker) -> Broker:
    """Make `broker` the one actors are declared on (call before importing the actors)."""
    global _installed
    with _lock:
        _installed = broker
        dramatiq.set_broker(broker)
        broker.declare_queue(QUEUE)
    return broker


def configured_broker(settings: Settings | None = None) -> Broker:
    """The installed broker, or the one the settings (the environment) describe, installed."""
    with _lock:
        if _installed is not None:
            return _installed
    return install(make_broker(settings or Settings.load()))


class Queue:
    """Enqueues batches of enrollment ids for `ACTOR`, and notices for `NOTICES_ACTOR`, on a
    broker, without importing the actors."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        broker.declare_queue(QUEUE)

    def __call__(self, ids: Sequence[int], lease: str | None = None) -> None:
        """One message: the ids and the lease token they were claimed under (None: unclaimed)."""
        message: Message[None] = Message(
            queue_name=QUEUE,
            actor_name=ACTOR,
            args=(list(ids), lease),
            kwargs={},
            options={},
        )
        self.broker.enqueue(message)

    def notices(self, ids: Sequence[int]) -> None:
        """One message: the ids of notices to owners that a transaction just committed."""
        message: Message[None] = Message(
            queue_name=QUEUE, actor_name=NOTICES_ACTOR, args=(list(ids),), kwargs={}, options={}
        )
        self.broker.enqueue(message)

    def backlog(self) -> int | None:
        """Messages waiting for a worker, when the broker can tell; None otherwise.

        Messages a worker has fetched do not count: those of a worker that
        died stay fetched until Dramatiq notices, and their enrollments come
        back through their leases long before.
        """
        broker = self.broker
        if isinstance(broker, StubBroker):
            return int(broker.queues[QUEUE].qsize())
        if isinstance(broker, RedisBroker):
            waiting: Any = broker.client.llen(f"{broker.namespace}:{QUEUE}")
            return int(waiting)
        return None
