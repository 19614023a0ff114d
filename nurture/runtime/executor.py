"""Running a batch of enrollments: decide, send each touch exactly once, store the outcome.

`Executor.run(ids, lease)` is what the Dramatiq actor calls; tests call it
directly. It works in four steps, and no transaction is open while a
template renders (a template may take ``NURTURE_RENDER_SECONDS`` a message):

1. **Plan** (one short transaction). Claim the enrollments
   (`nurture.runtime.claims`), mark the touches a dead job had handed to a
   channel without storing the answer as ``unknown``, load them
   (`nurture.runtime.loading`), and ask the core (`nurture.engine.decide`).
   Every touch to send becomes a delivery row under its unique key
   (enrollment, step, iteration), status ``pending``, with its id and its
   deterministic Message-ID, not rendered yet. Then commit: the rows exist
   before anything is rendered or sent. A touch whose row is already ``sent``
   or ``failed`` is not sent again; one left ``pending`` and never handed
   over is sent now; enrollments with nothing to send are stored right here.
2. **Render** (no transaction; `nurture.runtime.rendering`), a slice at a
   time, cheapest templates first, at most half the lease in all. After each
   slice one short transaction stores the messages' tracked links, and
   ``failed`` with the reason for touches that could not be rendered or
   addressed, on rows still ``pending``, unmarked, of enrollments this job
   holds. Touches left unrendered (the budget is spent, the process is
   stopping) stay ``pending`` and unmarked, their enrollments due again.
3. **Send** (no transaction), each slice as soon as it is stored. Its
   messages go out concurrently over the process's channels
   (`nurture.runtime.sending`); each row is marked handed over, committed,
   just before its call, and gets its answer as soon as the channel gives it
   (`nurture.runtime.handover`).
4. **Record** (one transaction; one more after a slice that finishes some of
   the batch's enrollments while others wait). Answers not stored yet, the
   other actions of each decision (tags, scores, MQL, ``enroll``), the
   enrollments' new states, and the ways the decisions took out of steps with
   several (counted for live pictures, `nurture.runtime.edges`).

Why the rows are written unrendered and filled later, rather than deciding
in one transaction and writing rendered rows in another if the enrollment
did not change meanwhile: the claim (a lease in the enrollment's row, not a
database lock) already keeps other jobs off the enrollment between the
transactions, the handover mark already decides which of two racing jobs
sends a row, and a ``pending`` row never handed over already means "render
and send me" to the next job. So a crash between any two steps leaves
nothing the existing rules do not cover, with no version check and no
second decision to compare.

A crash during 3 or before 4 leaves the rows on the wire marked and
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
gets a ``bounced_hard`` event and that channel is closed for its address
(`nurture.store.suppressions`: a WeChat 43004 stops WeChat, not email), with the
reason in the event. A transient failure marks it ``deferred`` and keeps the
enrollment where it was, due again after an exponential backoff with jitter
(``next_run_at``, never a delayed message); the rerun decides again, finds
the row and sends it again, up to ``max_attempts`` sends, then ``failed``.

Throttling. An email whose receiving domain has reached its rate
(``NURTURE_DOMAIN_RATES``, `nurture.runtime.throttling`) is not handed to the
channel: it is ``deferred`` the same way, but without using up an attempt,
its enrollment due again when the domain's window allows one more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Final

from sqlalchemy import Text, bindparam, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from channels import OutboundMessage, Receipt
from nurture.config import Settings
from nurture.engine import decide
from nurture.engine.caps import Cap
from nurture.engine.clock import Clock
from nurture.models import Delivery, Enrollment
from nurture.render import Renderer
from nurture.runtime import claims
from nurture.runtime.clock import span
from nurture.runtime.database import allocate_ids, among, table_of
from nurture.runtime.edges import Ways
from nurture.runtime.handover import Handoff
from nurture.runtime.loading import Graphs, Item, load_batch
from nurture.runtime.observer import BatchReport, Observer
from nurture.runtime.recording import Recorder
from nurture.runtime.rendering import Pair, Renders
from nurture.runtime.throttling import Throttle
from nurture.runtime.touches import Messages, Plan, Touch, touch_for

logger = logging.getLogger("nurture.runtime")

SEND_AGAIN: Final = ("deferred", "pending")
"""Statuses of an existing row whose touch is sent (again): a transient failure, or a row
a stopped job never handed over (rows it handed over are ``unknown`` by then)."""
RECORD_ATTEMPTS: Final = 3
"""Tries of the record step when the database is briefly unavailable."""
DELIVERIES: Final = table_of(Delivery)
ENROLLMENTS: Final = table_of(Enrollment)

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
        self.renders = Renders(self.messages, settings)
        self.recorder = Recorder(settings, clock, self.graphs)
        self.throttle = Throttle.from_settings(settings)

    # ------------------------------------------------------------ the four steps

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
        pairs = [(p.item, t) for p in waiting for t in p.touches]
        done: set[int] = set()
        for rendered in self.renders.slices(pairs):
            self._fill(rendered, me)
            self._send([t for _item, t in rendered], me)
            done.update(id(t) for _item, t in rendered)
            ready = [p for p in waiting if all(id(t) in done for t in p.touches)]
            if ready and len(ready) < len(waiting):  # the others wait for their slices
                self._record_with_retries(ready, me, report)
                kept = {id(p) for p in ready}
                waiting = [p for p in waiting if id(p) not in kept]
        self._record_with_retries(waiting, me, report)
        self.observer.recorded(report)
        return report

    def stop_rendering(self) -> None:
        """Render nothing more (shutting down): unrendered touches are handed back."""
        self.renders.stop()

    def finish_rendering_by(self, deadline: float) -> None:
        """Start no render after `deadline` (``time.monotonic()``): the run is ending."""
        self.renders.finish_by(deadline)

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
        items = load_batch(
            session, claimed, self.graphs, now, self.global_cap, self.settings.require_consent
        )
        loaded = {item.id for item in items}
        claims.release(session, [i for i in claimed if i not in loaded], me)
        ways = Ways()
        plans = [self._decide(item, now, report, ways) for item in items]
        self._write_pending(session, plans, now)
        return plans

    def _send(self, rendered: Sequence[Touch], me: str) -> None:
        touches = [t for t in rendered if t.receipt is None and t.message]
        if self.throttle is not None:
            touches = self._within_rates(touches)
        messages = [t.message for t in touches if t.message is not None]
        if not messages:
            return
        for touch in touches:
            touch.handoff = Handoff(touch.delivery_id, me, touch.attempts)
        self.observer.before_send(messages)
        receipts = self.send_all(messages, [t.handoff for t in touches if t.handoff])
        for touch, receipt in zip(touches, receipts, strict=True):
            touch.receipt = receipt
        self.observer.after_send(messages, receipts)

    def _within_rates(self, touches: Sequence[Touch]) -> list[Touch]:
        """The touches that may go now; each email over its receiving domain's rate gets its
        wait (`Touch.throttled`) and is not sent."""
        assert self.throttle is not None
        emails = [t for t in touches if t.channel == "email" and t.message is not None]
        waits = self.throttle.take_all([t.message.to for t in emails if t.message is not None])
        for touch, wait in zip(emails, waits, strict=True):
            touch.throttled = wait
        return [t for t in touches if t.throttled is None]

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

    def _decide(self, item: Item, now: datetime, report: BatchReport, ways: Ways) -> Plan:
        if item.unknown:
            report.held += 1
            return Plan(item, None)
        ways.clear()
        try:
            decision = decide(
                item.state(),
                item.view,
                item.events,
                item.graph,
                now,
                item.history,
                self.global_cap,
                observer=ways,
            )
        except Exception:  # one odd enrollment must not stop the batch
            logger.exception("deciding enrollment %s failed; holding it", item.id)
            report.held += 1
            return Plan(item, None)
        report.decided += 1
        plan = Plan(item, decision, took=ways.taken(item.graph))
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
        """Write every touch's row before anything is rendered or sent: ``pending``, with its
        Message-ID; new rows get their ids here (the render needs the id for the tracking
        tokens). A row written by an earlier job becomes ``pending`` again, unmarked."""
        touches = [(p.item, t) for p in plans for t in p.touches]
        new = [t for _item, t in touches if not t.delivery_id]
        for touch, delivery_id in zip(
            new, allocate_ids(session, DELIVERIES, len(new)), strict=True
        ):
            touch.delivery_id = delivery_id
        rows = [self.messages.row(item, t, now) for item, t in touches if not t.exists]
        again = [
            {"b_id": t.delivery_id, "b_attempts": t.attempts} for _item, t in touches if t.exists
        ]
        if rows:
            session.execute(DELIVERIES.insert(), rows)
        if again:
            unsent = (DELIVERIES.c.status == "deferred") | (
                (DELIVERIES.c.status == "pending") & DELIVERIES.c.handed_by.is_(None)
            )  # a row another job handed over meanwhile keeps its mark: the send finds it taken
            session.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id == bindparam("b_id"), unsent)
                .values(
                    status="pending",
                    attempts=bindparam("b_attempts"),
                    created_at=now,
                    handed_at=None,
                    handed_by=None,
                ),
                again,
            )

    def _fill(self, rendered: Sequence[Pair], me: str) -> None:
        """One short transaction after a slice is rendered, before any of it is sent: the
        tracked links of each message, or ``failed`` with the reason for each touch that
        could not be rendered or addressed. Only rows still ``pending``, unmarked, of
        enrollments this job still holds (a job whose lease ran out changes nothing)."""
        links = [
            {"b_id": t.delivery_id, "b_links": t.links}
            for _item, t in rendered
            if t.message is not None and (t.links is not None or t.exists)
        ]
        failed = [
            {"b_id": t.delivery_id, "b_error": t.receipt.detail}
            for _item, t in rendered
            if t.failed_early and t.receipt is not None
        ]
        if not links and not failed:
            return
        held = select(ENROLLMENTS.c.id).where(ENROLLMENTS.c.claimed_by == me)
        ours = (
            (DELIVERIES.c.id == bindparam("b_id"))
            & (DELIVERIES.c.status == "pending")
            & DELIVERIES.c.handed_by.is_(None)
            & DELIVERIES.c.enrollment_id.in_(held)
        )
        log = func.coalesce(DELIVERIES.c.error + "\n", "") + bindparam("b_error", type_=Text)
        with self.sessions() as session, session.begin():
            if links:
                session.execute(
                    update(DELIVERIES).where(ours).values(links=bindparam("b_links")), links
                )
            if failed:
                session.execute(
                    update(DELIVERIES).where(ours).values(status="failed", error=log), failed
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
