"""Sending the owners' notices: pending rows out through the channels, then marked.

A worker's actor sends the notices a transaction queued the moment it
committed (`send_ids`); the scheduler sends whatever is still pending every
tick (`send_pending`), so a lost message delays a notice, never loses it. A
notice's data is read in one short transaction, its template rendered with
none open (a template may take ``NURTURE_RENDER_SECONDS``), and it is marked
``sending`` in another short one only if it is still ``pending``, so two
senders never send one notice and a crash before that leaves it ``pending``.
A crash while sending, or an answer lost after the message went out, leaves
it ``sending`` (maybe delivered: never resent on its own). A message the
channel took is ``sent``; one it refused for good, or that could not be
built, ``failed`` with the reason; a transient failure, or a send a stopping
process did not start, goes back to ``pending`` and is tried again on the
next tick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from channels import DeliveryStatus, OutboundMessage, Receipt
from nurture.config import Settings
from nurture.engine.clock import Clock
from nurture.handoff.messages import NoticeDraft, NoticeError, draft, message_of
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
            routing, drafts = self._drafts(session, limit, ids)
        if not drafts:
            return 0
        built = [self._build(d, routing) for d in drafts]
        with self.sessions() as session, session.begin():
            ids, messages = _take(session, built)
        if not messages:
            return 0
        receipts = self.send_all(messages)
        with self.sessions() as session, session.begin():
            for notice_id, receipt in zip(ids, receipts, strict=True):
                _store(session, notice_id, receipt, self.clock.now())
        return len(messages)

    def _drafts(
        self, session: Session, limit: int, wanted: Sequence[int] | None
    ) -> tuple[dict[str, Any], list[NoticeDraft]]:
        """The pending notices' drafts; one whose lead is gone is ``failed`` here."""
        query = select(Notice).where(Notice.status == "pending")
        if wanted is not None:
            query = query.where(Notice.id.in_(wanted))
        query = query.order_by(Notice.id).limit(limit).with_for_update(skip_locked=True)
        rows = list(session.scalars(query))
        if not rows:
            return {}, []
        routing = dict(active_routing(session) or {})
        drafts: list[NoticeDraft] = []
        for notice in rows:
            try:
                drafts.append(
                    draft(session, notice, routing, self.renderer, self.settings, self.clock.now())
                )
            except NoticeError as e:
                notice.status, notice.error = "failed", str(e)
                logger.warning("notice %d to %s failed: %s", notice.id, notice.owner, e)
        return routing, drafts

    def _build(
        self, notice: NoticeDraft, routing: Mapping[str, Any]
    ) -> tuple[NoticeDraft, OutboundMessage | NoticeError]:
        try:
            return notice, message_of(notice, routing, self.renderer, self.settings)
        except NoticeError as e:
            return notice, e


def _take(
    session: Session, built: Sequence[tuple[NoticeDraft, OutboundMessage | NoticeError]]
) -> tuple[list[int], list[OutboundMessage]]:
    """Mark each rendered notice ``sending`` (each one that could not be, ``failed``) if it is
    still ``pending``: of two senders that rendered one notice, one sends it."""
    ids: list[int] = []
    messages: list[OutboundMessage] = []
    for notice, outcome in built:
        still = update(Notice).where(Notice.id == notice.id, Notice.status == "pending")
        if isinstance(outcome, NoticeError):
            session.execute(still.values(status="failed", error=str(outcome)))
            logger.warning("notice %d to %s failed: %s", notice.id, notice.owner, outcome)
            continue
        taken = session.execute(still.values(status="sending").returning(Notice.id)).first()
        if taken is not None:
            ids.append(notice.id)
            messages.append(outcome)
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
