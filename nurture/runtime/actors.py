"""The Dramatiq actor: one message, one batch of enrollment ids.

Importing this module declares the actor on the broker of
`nurture.runtime.broker`: the installed one (``nurture run``, tests), else
the one ``NURTURE_BROKER_URL`` names (Redis or RabbitMQ), installed first.
``nurture worker`` runs ``dramatiq nurture.runtime.actors``; Dramatiq finds
the broker as this module's ``broker``.

A worker process stops gracefully on SIGTERM, whether sent to it or to its
whole process group (`one_stop_per_process`), within ``NURTURE_SHUTDOWN_SECONDS``.

The actor is thin: it hands the ids to the process's executor, which claims,
loads, decides, sends and stores. It does not retry through Dramatiq (a
retry is a delayed message, drained slowly and held in worker memory); a
failed batch keeps its lease and the scheduler enqueues it again when the
lease runs out.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, Final

import dramatiq
from dramatiq import Middleware

from nurture.handoff import notices
from nurture.runtime import process
from nurture.runtime.broker import ACTOR, NOTICES_ACTOR, QUEUE, Queue, configured_broker
from nurture.runtime.notifying import notice_sender

logger = logging.getLogger("nurture.runtime")

TIME_LIMIT_MS: Final = 15 * 60 * 1000
"""A batch that takes longer than this is interrupted (its lease, by then, has run out)."""

broker = configured_broker()


@dramatiq.actor(
    broker=broker,
    actor_name=ACTOR,
    queue_name=QUEUE,
    max_retries=0,
    time_limit=TIME_LIMIT_MS,
)
def run_enrollments(ids: list[int], lease: str | None = None) -> None:
    """Run the enrollments `ids`, claimed by the scheduler under `lease` (None: unclaimed)."""
    report = process.current().executor.run(ids, lease)
    logger.debug("batch of %d: %s", len(ids), report)


@dramatiq.actor(
    broker=broker,
    actor_name=NOTICES_ACTOR,
    queue_name=QUEUE,
    max_retries=0,
    time_limit=TIME_LIMIT_MS,
)
def send_notices(ids: list[int]) -> None:
    """Send these notices to owners now (the scheduler sends any this misses)."""
    sent = notice_sender(process.current()).send_ids(ids)
    logger.debug("notices %s: %d sent", ids, sent)


class RuntimeMiddleware(Middleware):
    """Opens the process's runtime at worker boot (the notices its transactions queue go to
    `send_notices` as they commit) and closes it at shutdown.

    A runtime someone installed (``nurture run``, a test) is theirs to close.
    When the worker begins to shut down, the channels take no more messages:
    the batches in flight store what went out and hand the rest back.
    """

    def after_process_boot(self, broker: Any) -> None:
        one_stop_per_process()

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        runtime = process.current()
        notices.after_commit(runtime.sessions, Queue(broker).notices)

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        process.stop_handing()

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        process.close_own()


def one_stop_per_process() -> None:
    """Let only the first SIGTERM (or SIGHUP) reach Dramatiq's handler in a worker process.

    A signal to the process group (``kill -TERM -PGID``, systemd's default)
    reaches each worker process twice: directly, and forwarded by Dramatiq's
    main process. Dramatiq takes the second as "kill now" and exits with its
    batches in flight. Here the second is logged and ignored: the graceful stop
    is bounded by ``NURTURE_SHUTDOWN_SECONDS`` (``--worker-shutdown-timeout``),
    and SIGKILL still stops a process at once.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is None:
            continue
        handler = signal.getsignal(signum)
        if callable(handler):
            signal.signal(signum, _first_only(handler))


def _first_only(handler: Callable[[int, FrameType | None], Any]) -> Callable[..., Any]:
    stopping = False

    def once(signum: int, frame: FrameType | None) -> Any:
        nonlocal stopping
        if stopping:
            logger.info(
                "already stopping gracefully; signal %d ignored (SIGKILL stops at once)", signum
            )
            return None
        stopping = True
        return handler(signum, frame)

    return once


if not any(isinstance(m, RuntimeMiddleware) for m in broker.middleware):
    broker.add_middleware(RuntimeMiddleware())
