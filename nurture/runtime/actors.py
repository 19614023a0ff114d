"""The Dramatiq actor: one message, one batch of enrollment ids.

Importing this module declares the actor on the broker of
`nurture.runtime.broker`: the installed one (``nurture run``, tests), else
the one ``NURTURE_BROKER_URL`` names, installed first. ``nurture worker``
runs ``dramatiq nurture.runtime.actors``; Dramatiq finds the broker as this
module's ``broker``.

The actor is thin: it hands the ids to the process's executor, which claims,
loads, decides, sends and stores. It does not retry through Dramatiq (a
retry is a delayed message, drained slowly and held in worker memory); a
failed batch keeps its lease and the scheduler enqueues it again when the
lease runs out.
"""

from __future__ import annotations

import logging
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
    """

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        runtime = process.current()
        notices.after_commit(runtime.sessions, Queue(broker).notices)

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        process.close_own()


if not any(isinstance(m, RuntimeMiddleware) for m in broker.middleware):
    broker.add_middleware(RuntimeMiddleware())
