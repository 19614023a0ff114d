"""The Dramatiq broker, set explicitly before any actor is declared.

Dramatiq makes a default broker (RabbitMQ) the first time an actor is
declared without one, a known trap (dramatiq issue #214). So the broker is
chosen here, from the settings, and installed with `dramatiq.set_broker`
before `nurture.runtime.actors` declares its actor on it:

- ``NURTURE_BROKER_URL=redis://...``: a `RedisBroker`, for `nurture worker`
  processes on any number of machines;
- ``NURTURE_BROKER_URL=amqp://user:password@host:5672/vhost``: Dramatiq's
  `RabbitmqBroker` (pika), the same, for companies that run RabbitMQ. It
  declares the queue durable and publishes persistent messages with
  publisher confirms: an enqueue that returns is on the broker. A worker's
  unacknowledged messages go back to the queue when its connection drops
  (a killed process), where Redis waits for the dead worker's heartbeat;
  either way the job's claims (`nurture.runtime.claims`) make a second
  delivery of a message a no-op. A vhost is a namespace: two installations
  (or test runs) on one RabbitMQ each take their own;
- unset: a `StubBroker`, whose queue lives in this process (``nurture run``
  consumes it with worker threads).

The broker only carries work: a message lost with a broker that crashed is
made again by the scheduler once its lease runs out. `check_reachable` is the
start-up check of the commands that need one.

Messages carry ids only (`enqueue`); time never rides in a message: a wait
is the enrollment's ``next_run_at``, not a delayed message.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Final
from urllib.parse import urlsplit

import dramatiq
from dramatiq import Broker, Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from nurture.config import Settings

QUEUE: Final = "nurture"
ACTOR: Final = "nurture.run_enrollments"
"""The actor that runs a batch of enrollments (`nurture.runtime.actors.run_enrollments`)."""
NOTICES_ACTOR: Final = "nurture.send_notices"
"""The actor that sends owners' notices (`nurture.runtime.actors.send_notices`)."""
RABBITMQ_SCHEMES: Final = ("amqp", "amqps")
REACH_SECONDS: Final = 5.0
"""How long the start-up check waits for the broker to answer."""

_lock = threading.Lock()
_installed: Broker | None = None


class BrokerUnreachable(Exception):
    """The broker did not answer; the message is one line naming it (without a password)."""


def is_rabbitmq(url: str) -> bool:
    return urlsplit(url).scheme in RABBITMQ_SCHEMES


def redacted(url: str) -> str:
    """The broker URL without its password, safe to print."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def make_broker(settings: Settings) -> Broker:
    """The broker `settings.broker_url` names (Redis or RabbitMQ), else an in-process stub."""
    url = settings.broker_url
    if not url:
        return StubBroker()
    if is_rabbitmq(url):
        return RabbitmqBroker(url=url, confirm_delivery=True)
    return RedisBroker(url=url)  # type: ignore[no-untyped-call]


def check_reachable(url: str, timeout: float = REACH_SECONDS) -> None:
    """Raise `BrokerUnreachable` unless the broker at `url` answers (and lets us in)."""
    try:
        if is_rabbitmq(url):
            _knock_rabbitmq(url, timeout)
        else:
            _knock_redis(url, timeout)
    except Exception as e:  # pika and redis raise many kinds; each one means "not usable"
        why = str(e).strip() or type(e).__name__
        raise BrokerUnreachable(
            f"cannot reach the broker {redacted(url)}: {redacted(why)}".replace("\n", " ")
        ) from e


def _knock_rabbitmq(url: str, timeout: float) -> None:
    import pika
    import pika.exceptions

    parameters = pika.URLParameters(url)
    parameters.connection_attempts = 1
    parameters.socket_timeout = timeout
    parameters.blocked_connection_timeout = timeout
    quiet = logging.getLogger("pika")  # it logs each failed attempt, with a traceback
    level = quiet.level
    quiet.setLevel(logging.CRITICAL + 1)
    try:
        pika.BlockingConnection(parameters).close()
    except pika.exceptions.ProbableAuthenticationError as e:
        raise BrokerUnreachable(f"it refused the user and password ({e})") from e
    except pika.exceptions.ProbableAccessDeniedError as e:
        raise BrokerUnreachable(f"access to the vhost was refused ({e})") from e
    except pika.exceptions.AMQPConnectionError as e:
        raise BrokerUnreachable(_pika_why(e)) from e
    finally:
        quiet.setLevel(level)


def _pika_why(e: BaseException) -> str:
    """pika wraps the socket's error (in ``exception``, or the last of ``exceptions``)."""
    inner: Any = e.args[-1] if e.args else e
    while True:
        if getattr(inner, "exceptions", None):
            inner = inner.exceptions[-1]
        elif isinstance(getattr(inner, "exception", None), BaseException):
            inner = inner.exception
        else:
            break
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    return str(inner).strip() or type(inner).__name__


def _knock_redis(url: str, timeout: float) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


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
        with _reconnecting(self.broker):
            self.broker.enqueue(message)

    def notices(self, ids: Sequence[int]) -> None:
        """One message: the ids of notices to owners that a transaction just committed."""
        message: Message[None] = Message(
            queue_name=QUEUE, actor_name=NOTICES_ACTOR, args=(list(ids),), kwargs={}, options={}
        )
        with _reconnecting(self.broker):
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
        if isinstance(broker, RabbitmqBroker):  # ready messages; those fetched are unacked
            with _reconnecting(broker):
                return int(broker.get_queue_message_counts(QUEUE)[0])
        return None


@contextmanager
def _reconnecting(broker: Broker) -> Iterator[None]:
    """On RabbitMQ, a failed call drops this thread's connection, so the next one opens a new
    one. Dramatiq's `RabbitmqBroker` does so only inside `enqueue`, and only for some of
    pika's errors: a node that restarted left the scheduler's channel closed for good
    ("Channel is closed" on every poll), found by the broker-restart fault test."""
    try:
        yield
    except Exception:
        if isinstance(broker, RabbitmqBroker):
            with suppress(Exception):
                del broker.connection
        raise
