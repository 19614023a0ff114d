"""Sending the owners' notices: pending rows out through the channels, then marked.

A worker's actor sends the notices a transaction queued the moment it
committed (`send_ids`); the scheduler sends whatever is still pending every
tick (`send_pending`), so a lost message delays a notice, never loses it. Rows are taken
``FOR UPDATE SKIP LOCKED`` and marked ``sending`` in the transaction that
built their messages, so two schedulers never send one notice; a crash while
sending, or an answer lost after the message went out, leaves it ``sending``
(maybe delivered: never resent on its own). A message the channel took is
``sent``; one it refused for good, or that could not be built, ``failed`` with
the reason; a transient failure, or a send a stopping process did not start,
goes back to ``pending`` and is tried again on the next tick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from channels import DeliveryStatus, OutboundMessage, Receipt
from nurture.config import Settings
from nurture.engine.clock import Clock
from nurture.handoff.messages import NoticeError, outbound
from nurture.models import Notice
from nurture.render import Renderer
from nurture.runtime.process import Runtime
from nurture.store.definitions import active_routing

logger = logging.getLogger("nurture.runtime")

SendAll = Callable[[Sequence[OutboundMessage]], list[Receipt | None]]


class NoticeSender:
    """Sends pending notices with the process's renderer and channels."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        settings: Settings,
        renderer: Renderer,
        send_all: SendAll,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.settings = settings
        self.renderer = renderer
        self.send_all = send_all

    def send_pending(self, limit: int) -> int:
        """Send up to `limit` pending notices; how many were handed to a channel."""
        return self.send(limit, None)

    def send_ids(self, ids: Sequence[int]) -> int:
        """Send these notices if they are still pending (another sender may have them)."""
        return self.send(len(ids), ids)

    def send(self, limit: int, ids: Sequence[int] | None) -> int:
        """Send up to `limit` pending notices (of `ids`, when given); how many were sent."""
        with self.sessions() as session, session.begin():
            ids, messages = self._claim(session, limit, ids)
        if not messages:
            return 0
        receipts = self.send_all(messages)
        with self.sessions() as session, session.begin():
            for notice_id, receipt in zip(ids, receipts, strict=True):
                _store(session, notice_id, receipt, self.clock.now())
        return len(messages)

    def _claim(
        self, session: Session, limit: int, wanted: Sequence[int] | None
    ) -> tuple[list[int], list[OutboundMessage]]:
        query = select(Notice).where(Notice.status == "pending")
        if wanted is not None:
            query = query.where(Notice.id.in_(wanted))
        query = query.order_by(Notice.id).limit(limit).with_for_update(skip_locked=True)
        rows = list(session.scalars(query))
        if not rows:
            return [], []
        routing = active_routing(session) or {}
        ids: list[int] = []
        messages: list[OutboundMessage] = []
        for notice in rows:
            try:
                message = outbound(
                    session, notice, routing, self.renderer, self.settings, self.clock.now()
                )
            except NoticeError as e:
                notice.status, notice.error = "failed", str(e)
                logger.warning("notice %d to %s failed: %s", notice.id, notice.owner, e)
                continue
            notice.status = "sending"
            ids.append(notice.id)
            messages.append(message)
        return ids, messages


def _store(session: Session, notice_id: int, receipt: Receipt | None, now: datetime) -> None:
    if receipt is None:  # not handed to the channel (the process is stopping): again later
        values: dict[str, object] = {"status": "pending"}
    elif receipt.ok:
        values = {"status": "sent", "sent_at": now, "error": None}
    elif receipt.status is DeliveryStatus.FAILED_TRANSIENT:
        values = {"status": "pending", "error": receipt.detail}
    elif receipt.status is DeliveryStatus.UNKNOWN:  # maybe delivered: never sent again
        values = {"error": receipt.detail}
    else:
        values = {"status": "failed", "error": receipt.detail}
    session.execute(update(Notice).where(Notice.id == notice_id).values(**values))


def notice_sender(runtime: Runtime) -> NoticeSender:
    """A sender on a worker runtime's database, renderer and channels."""
    settings = runtime.settings

    def send_all(messages: Sequence[OutboundMessage]) -> list[Receipt | None]:
        return runtime.send_loop.send_all(messages, settings.send_concurrency)

    renderer = runtime.executor.renderer
    return NoticeSender(runtime.sessions, runtime.clock, settings, renderer, send_all)
