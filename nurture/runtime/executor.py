"""Running a batch of enrollments: decide, send each touch exactly once, store the outcome.

`Executor.run(ids, lease)` is what the Dramatiq actor calls; tests call it
directly. It works in three steps:

1. **Plan** (one transaction). Claim the enrollments (`nurture.runtime.claims`),
   mark the touches a dead job had handed to a channel without storing the
   answer as ``unknown``, load them (`nurture.runtime.loading`), and ask the
   core (`nurture.engine.decide`). Every touch to send becomes a delivery row
   under its unique key (enrollment, step, iteration), status ``pending``,
   with a deterministic Message-ID, rendered, its tracked links stored. Then
   commit: the rows exist before any channel is called. A touch whose row is
   already ``sent`` or ``failed`` is not sent again; one left ``pending`` and
   never handed over is sent now; enrollments with nothing to send are
   stored right here.
2. **Send** (no transaction). The batch's messages go out concurrently over
   the process's channels (`nurture.runtime.sending`); each row is marked
   handed over, committed, just before its call, and gets its answer as soon
   as the channel gives it (`nurture.runtime.handover`).
3. **Record** (one transaction). Answers not stored yet, the other actions of
   each decision (tags, scores, MQL, ``enroll``), and the enrollments' new states.

A crash during 2 or before 3 leaves the rows on the wire marked and
``pending`` (at most the process's send concurrency; rows never handed over
are simply sent by the next job): the next job for the enrollment (its lease
ran out, the scheduler enqueued it again) marks them ``unknown`` and holds
the enrollment, looking again once per lease; an operator lists them
(``nurture report deliveries --unknown``) and releases them (``nurture
deliveries release``). Nothing is resent on its own. A job that outlives its
lease still stores what the channel said (a row another job marked
``unknown`` becomes ``sent``); the enrollment is then held until the next
look finds nothing unknown and moves on.

Failures. A permanent failure marks the touch ``failed`` with the reason;
when the address itself is bad (a hard bounce, an invalid number) the lead
gets a ``bounced_hard`` event, which suppresses it everywhere, with the
reason in the event. A transient failure marks it ``deferred`` and keeps the
enrollment where it was, due again after an exponential backoff with jitter
(``next_run_at``, never a delayed message); the rerun decides again, finds
the row and sends it again, up to ``max_attempts`` sends, then ``failed``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Text, bindparam, case, func, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from channels import OutboundMessage, Receipt
from nurture.config import Settings
from nurture.engine import decide
from nurture.engine.caps import Cap
from nurture.engine.clock import Clock
from nurture.models import Delivery
from nurture.render import Renderer
from nurture.runtime import claims
from nurture.runtime.clock import span
from nurture.runtime.database import allocate_ids, among, table_of
from nurture.runtime.handover import Handoff
from nurture.runtime.loading import Graphs, Item, load_batch
from nurture.runtime.observer import BatchReport, Observer
from nurture.runtime.recording import Recorder
from nurture.runtime.touches import Messages, Plan, touch_for

logger = logging.getLogger("nurture.runtime")

SEND_AGAIN: Final = ("deferred", "pending")
"""Statuses of an existing row whose touch is sent (again): a transient failure, or a row
a stopped job never handed over (rows it handed over are ``unknown`` by then)."""
RECORD_ATTEMPTS: Final = 3
"""Tries of the record step when the database is briefly unavailable."""
DELIVERIES: Final = table_of(Delivery)

SendAll = Callable[[Sequence[OutboundMessage], Sequence[Handoff]], list[Receipt | None]]
"""Sends messages, marking each `Handoff` before its call; None for one not handed over."""


class Executor:
    """Runs batches of enrollments; one per process, shared by its worker threads."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        settings: Settings,
        renderer: Renderer,
        send_all: SendAll,
        *,
        graphs: Graphs | None = None,
        observer: Observer | None = None,
        name: str = "worker",
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.settings = settings
        self.renderer = renderer
        self.send_all = send_all
        self.graphs = graphs or Graphs()
        self.observer = observer or Observer()
        self.name = name
        self.global_cap: Cap | None = settings.global_cap
        self.messages = Messages(renderer, settings)
        self.recorder = Recorder(settings, clock, self.graphs)

    # ------------------------------------------------------------ the three steps

    def run(self, ids: Sequence[int], lease: str | None = None) -> BatchReport:
        """Run the enrollments `ids` of one message (claimed by the scheduler under `lease`)."""
        report = BatchReport()
        me = claims.new_token(self.name)
        with self.sessions() as session, session.begin():
            plans = self._plan(session, ids, lease, me, report)
            waiting = [p for p in plans if p.touches]
            self.recorder.record(session, [p for p in plans if not p.touches], me, report)
        if not waiting:
            self.observer.recorded(report)
            return report
        self._send(waiting, me)
        self._record_with_retries(waiting, me, report)
        self.observer.recorded(report)
        return report

    def _plan(
        self, session: Session, ids: Sequence[int], lease: str | None, me: str, report: BatchReport
    ) -> list[Plan]:
        now = self.clock.now()
        until = now + span(self.clock, self.settings.lease_seconds)
        claimed = claims.claim_for_job(session, ids, lease, me, now, until)
        report.claimed = len(claimed)
        if not claimed:
            return []
        self.observer.claimed(claimed)
        report.unknown += _mark_unknown(session, claimed, me, now)
        items = load_batch(session, claimed, self.graphs, now, self.global_cap)
        loaded = {item.id for item in items}
        claims.release(session, [i for i in claimed if i not in loaded], me)
        plans = [self._decide(item, now, report) for item in items]
        self._write_pending(session, plans, now)
        return plans

    def _send(self, plans: Sequence[Plan], me: str) -> None:
        touches = [t for p in plans for t in p.touches if t.receipt is None and t.message]
        messages = [t.message for t in touches if t.message is not None]
        for touch in touches:
            touch.handoff = Handoff(touch.delivery_id, me, touch.attempts)
        self.observer.before_send(messages)
        receipts = self.send_all(messages, [t.handoff for t in touches if t.handoff])
        for touch, receipt in zip(touches, receipts, strict=True):
            touch.receipt = receipt
        self.observer.after_send(messages, receipts)

    def _record_with_retries(self, plans: Sequence[Plan], me: str, report: BatchReport) -> None:
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                with self.sessions() as session, session.begin():
                    self.recorder.record(session, plans, me, report)
                return
            except OperationalError:
                if attempt == RECORD_ATTEMPTS:
                    raise
                logger.warning("recording a batch failed; trying again", exc_info=True)
                time.sleep(0.5 * attempt)

    # ------------------------------------------------------------ planning

    def _decide(self, item: Item, now: datetime, report: BatchReport) -> Plan:
        if item.unknown:
            report.held += 1
            return Plan(item, None)
        try:
            decision = decide(
                item.state(), item.view, item.events, item.graph, now, item.history, self.global_cap
            )
        except Exception:  # one odd enrollment must not stop the batch
            logger.exception("deciding enrollment %s failed; holding it", item.id)
            report.held += 1
            return Plan(item, None)
        report.decided += 1
        plan = Plan(item, decision)
        for action in decision.actions:
            touch = touch_for(item, action)
            if touch is None:
                continue
            existing = item.deliveries.get((touch.key.step, touch.key.iteration))
            if existing is not None and existing.status not in SEND_AGAIN:
                report.skipped += 1  # sent, failed or suppressed by an earlier job
                continue
            if existing is not None:  # deferred: one more attempt; pending: never handed over
                again = existing.status == "deferred"
                touch.delivery_id, touch.exists = existing.id, True
                touch.attempts = existing.attempts + 1 if again else existing.attempts
            plan.touches.append(touch)
        return plan

    def _write_pending(self, session: Session, plans: Sequence[Plan], now: datetime) -> None:
        """Write every touch's row before anything is sent: ``pending``, rendered, links stored.

        New rows get their ids first (the render needs the id for the tracking
        tokens), so each row is inserted once, complete; a touch that cannot be
        rendered or addressed is written ``failed`` instead and never sent.
        """
        touches = [(p.item, t) for p in plans for t in p.touches]
        new = [t for _item, t in touches if not t.delivery_id]
        for touch, delivery_id in zip(
            new, allocate_ids(session, DELIVERIES, len(new)), strict=True
        ):
            touch.delivery_id = delivery_id
        rows: list[dict[str, Any]] = []
        again: list[dict[str, Any]] = []
        for item, touch in touches:
            outcome = self.messages.build(item, touch)
            links: list[dict[str, Any]] | None = None
            if isinstance(outcome, Receipt):
                touch.receipt, touch.failed_early = outcome, True
            else:
                touch.message, links = outcome
            status = "failed" if touch.failed_early else "pending"
            error = touch.receipt.detail if touch.receipt is not None else None
            if not touch.exists:
                rows.append(
                    self.messages.row(item, touch, now)
                    | {"status": status, "error": error, "links": links}
                )
            else:
                again.append(
                    {"b_id": touch.delivery_id, "b_attempts": touch.attempts, "b_links": links}
                    | {"b_status": status, "b_error": error}
                )
        if rows:
            session.execute(DELIVERIES.insert(), rows)
        if again:
            log = func.coalesce(DELIVERIES.c.error + "\n", "") + bindparam("b_error", type_=Text)
            unsent = (DELIVERIES.c.status == "deferred") | (
                (DELIVERIES.c.status == "pending") & DELIVERIES.c.handed_by.is_(None)
            )  # a row another job handed over meanwhile keeps its mark: the send finds it taken
            session.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id == bindparam("b_id"), unsent)
                .values(
                    status=bindparam("b_status"),
                    attempts=bindparam("b_attempts"),
                    links=bindparam("b_links"),
                    error=case(
                        (bindparam("b_error", type_=Text).is_(None), DELIVERIES.c.error), else_=log
                    ),
                    created_at=now,
                    handed_at=None,
                    handed_by=None,
                ),
                again,
            )


def _mark_unknown(session: Session, enrollment_ids: Iterable[int], me: str, now: datetime) -> int:
    """Touches handed to a channel by a job that stopped before storing the answer:
    ``unknown`` now, never resent. (``pending`` ones never handed over are sent again.)"""
    note = (
        func.coalesce(Delivery.error + "\n", "")
        + "unknown: handed to the channel by "
        + func.coalesce(Delivery.handed_by, "?")
        + f" and no answer stored when its job stopped; found by {me} at {now.isoformat()}"
    )
    marked = session.execute(
        update(Delivery)
        .where(
            among(session, Delivery.enrollment_id, enrollment_ids),
            Delivery.status == "pending",
            Delivery.handed_by.is_not(None),
        )
        .values(status="unknown", error=note)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(marked, "rowcount", 0) or 0)
