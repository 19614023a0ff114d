"""Recording a batch: delivery statuses, the decisions' other actions, the new states.

One transaction per batch, after the channels answered (or right after
planning, for enrollments with nothing to send; and after a slice of
rendering that finished some enrollments while others wait their turn):

- each touch: ``sent`` with its time; ``failed`` with the reason (a hard
  bounce also records ``bounced_hard`` for the lead and closes that channel
  for the lead's address on it, see `nurture.store.suppressions`);
  ``deferred`` after a transient failure while attempts remain, or when its
  receiving domain's rate held it back (no attempt used; counted in
  ``throttle_deferrals`` with the domain); ``unknown``
  when the answer was lost. Most were stored as the answers came
  (`nurture.runtime.handover`); the rest are stored here, by the same rule.
  A touch not handed over (stopping, or another job has it) stays ``pending``
  and its enrollment is due again at once;
- each enrollment: when all went out (or failed for good), its decision's
  other actions in order (tag, untag, score, ``enroll``, MQL, suppressed
  touches) and its new state; after a transient failure, the old state, due
  again after the backoff; when held by an ``unknown`` touch, the old state,
  looked at again after a lease (also when a channel's answer was ``unknown``:
  the message went out, its reply did not come back). Claims are released where this job still
  holds them; statuses are written only by the job that sent. Enrollments
  another job claimed while this one sent (its lease ran out) are left to
  that job, which decides them again: no action of theirs is done here, so
  none is done twice (the rows still held are locked first, `_still_held`);
- the ways the stored decisions took out of branches, splits and repeats:
  one upsert for the batch (`nurture.runtime.edges`), for the enrollments
  this job moved on.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Text, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from nurture.config import Settings
from nurture.engine import Decision, EmitMql, EnrollInto, Score, Suppressed, Tag, Untag
from nurture.engine.clock import Clock
from nurture.engine.loops import iteration_number
from nurture.models import Delivery, Enrollment, Lead, ThrottleDeferral
from nurture.models import Tag as TagRow
from nurture.runtime.clock import span
from nurture.runtime.database import insert_ignoring, table_of
from nurture.runtime.edges import add_ways
from nurture.runtime.enrolling import enroll_into
from nurture.runtime.handover import answer_row, store_answers
from nurture.runtime.keys import Key
from nurture.runtime.loading import Graphs, Item, columns_of
from nurture.runtime.observer import BatchReport
from nurture.runtime.sending import blames_address, retry_delay
from nurture.runtime.touches import Plan, Touch, delivery_row
from nurture.store.scoring import Rules, add_score, mql_step, recheck_mql, record_event
from nurture.store.suppressions import ADDRESS_OF, close_lead_channel

logger = logging.getLogger("nurture.runtime")

DELIVERIES: Final = table_of(Delivery)
ENROLLMENTS: Final = table_of(Enrollment)
TAGS: Final = table_of(TagRow)
THROTTLED: Final = table_of(ThrottleDeferral)


class Recorder:
    """Stores what a batch did; one per process."""

    def __init__(self, settings: Settings, clock: Clock, graphs: Graphs) -> None:
        self.settings = settings
        self.clock = clock
        self.graphs = graphs
        self.domain = settings.sender_domain()
        self.secret = settings.secret_keys()[-1]

    def record(self, session: Session, plans: Sequence[Plan], me: str, report: BatchReport) -> None:
        """Store what `plans` did, in the caller's transaction, as job `me`."""
        if not plans:
            return
        now = self.clock.now()
        statuses: list[dict[str, Any]] = []
        bounces: list[tuple[int, Touch]] = []
        throttled: list[Touch] = []
        advance: list[dict[str, Any]] = []
        moved: list[Plan] = []
        later: list[dict[str, Any]] = []
        rules = functools.cache(lambda: Rules.active(session))  # read once a batch, if at all
        held = _still_held(session, plans, me)
        for plan in plans:
            retry = self._outcomes(plan, now, statuses, bounces, throttled, report)
            if plan.item.id not in held:
                continue  # another job holds it now, and decides it again: not a row to touch
            if plan.decision is None:
                hold = span(self.clock, self.settings.lease_seconds)
                later.append({"b_id": plan.item.id, "b_me": me, "b_next": now + hold})
            elif retry is not None:
                later.append({"b_id": plan.item.id, "b_me": me, "b_next": now + retry})
            else:
                self._perform(session, plan, now, report, rules)
                advance.append({"b_id": plan.item.id, "b_me": me, **_prefixed(plan.decision)})
                moved.append(plan)
        if lost := len(plans) - len(held):  # the job that holds them now decides again
            logger.warning(
                "%d enrollments were claimed by another job while this one sent; that job "
                "does their steps",
                lost,
            )
        store_answers(session, statuses)
        _defer_throttled(session, throttled, me, now)
        table = ENROLLMENTS
        mine = (table.c.id == bindparam("b_id")) & (table.c.claimed_by == bindparam("b_me"))
        free = {"claimed_by": None, "claimed_until": None}
        if later:
            session.execute(
                update(table).where(mine).values(next_run_at=bindparam("b_next"), **free), later
            )
        if advance:
            values: dict[str, Any] = {name: bindparam(f"b_{name}") for name in STATE_COLUMNS}
            session.execute(update(table).where(mine).values(**values, **free), advance)
            add_ways(session, [(p.item.version.id, p.took) for p in moved if p.took])
        for lead_id, touch in bounces:
            self._bounce(session, lead_id, touch, now)

    def _outcomes(
        self,
        plan: Plan,
        now: datetime,
        statuses: list[dict[str, Any]],
        bounces: list[tuple[int, Touch]],
        throttled: list[Touch],
        report: BatchReport,
    ) -> timedelta | None:
        """Collect each touch's status; the delay before a retry, or None to move on."""
        delays: list[timedelta] = []
        for touch in plan.touches:
            receipt, handoff = touch.receipt, touch.handoff
            if touch.failed_early:
                report.failed += 1
                continue
            if touch.throttled is not None:  # held back by its domain's rate: not sent
                report.throttled += 1
                throttled.append(touch)
                delays.append(span(self.clock, touch.throttled.seconds))
                continue
            if receipt is None or handoff is None:  # not handed over: due again at once
                report.handed_back += 1
                delays.append(timedelta(0))
                continue
            row = answer_row(handoff, receipt, now, self.settings.max_attempts)
            if not handoff.stored:
                statuses.append(row)
            status = row["b_status"]
            if status == "sent":
                report.sent += 1
            elif status == "unknown":  # handed over, no answer: never resent on its own
                report.unknown += 1
                delays.append(span(self.clock, self.settings.lease_seconds))
            elif status == "deferred":
                report.retrying += 1
                delay = retry_delay(
                    touch.attempts, self.settings.retry_seconds, receipt.retry_after
                )
                delays.append(span(self.clock, delay.total_seconds()))
            else:
                report.failed += 1
                if receipt.status == "failed_permanent" and blames_address(receipt):
                    bounces.append((plan.item.lead.id, touch))
        return max(delays) if delays else None

    def _perform(
        self,
        session: Session,
        plan: Plan,
        now: datetime,
        report: BatchReport,
        rules: Callable[[], Rules],
    ) -> None:
        """The decision's actions other than sends, in order; then the MQL rule, if a `tag`,
        `untag` or `score` step changed what it may look at."""
        assert plan.decision is not None
        item, lead_id = plan.item, plan.item.lead.id
        changed: list[str] = []
        for action in plan.decision.actions:
            if isinstance(action, Tag):
                insert_ignoring(
                    session,
                    TAGS,
                    [{"lead_id": lead_id, "tag": action.tag, "tagged_at": now}],
                )
                changed.append(f'tag "{action.tag}"')
            elif isinstance(action, Untag):
                session.execute(
                    delete(TagRow).where(TagRow.lead_id == lead_id, TagRow.tag == action.tag)
                )
                changed.append(f'untag "{action.tag}"')
            elif isinstance(action, Score):
                add_score(session, lead_id, action.delta)
                changed.append(f"score {action.delta:+g}")
            elif isinstance(action, EnrollInto):
                created = enroll_into(session, lead_id, action.campaign, now, self.graphs)
                if created is not None:
                    report.enrolled.append(created)
            elif isinstance(action, EmitMql):
                rule = f'campaign "{item.version.campaign}": mql step'
                mql_step(session, lead_id, action.cause, rule, now, rules())
            elif isinstance(action, Suppressed):
                self._suppressed(session, item, action, plan.decision.state.loops, now)
        if changed:
            steps = ", ".join(changed)
            what = f'campaign "{item.version.campaign}": {steps}'
            recheck_mql(session, lead_id, what, now, rules())

    def _suppressed(
        self,
        session: Session,
        item: Item,
        action: Suppressed,
        loops: Mapping[str, int],
        now: datetime,
    ) -> None:
        """A touch withheld from a suppressed lead, or on a channel closed for it: a
        ``suppressed`` row says so."""
        node = item.graph.nodes.get(action.node_id)
        number = iteration_number(item.graph, node, loops) if node is not None else 0
        key = Key(item.id, action.node_id, number)
        touch = Touch(key, action.channel, action.template, None, None, None)
        row = delivery_row(item, touch, now, self.domain, self.secret)
        del row["id"]  # the database numbers it
        error = action.why if action.channel_only else f"lead is {action.why}"
        row.update(status="suppressed", error=error, attempts=0)
        insert_ignoring(session, DELIVERIES, [row])

    def _bounce(self, session: Session, lead_id: int, touch: Touch, now: datetime) -> None:
        """A hard bounce closes the touch's channel for the lead's address on it (a WeChat
        43004 stops WeChat, not email), with the server's answer as the reason; on a channel
        without an address of the lead's (webhooks) it suppresses the lead, as before."""
        lead = session.get(Lead, lead_id)
        if lead is None:
            return
        detail = touch.receipt.detail if touch.receipt else ""
        reason = f"bounced_hard on {touch.channel} delivery {touch.delivery_id}: {detail}"
        if touch.channel in ADDRESS_OF:
            if not close_lead_channel(session, lead, touch.channel, reason, now):
                return  # closed already (or no address): nothing new to record
        elif lead.hard_bounced_at is not None:
            return
        record_event(
            session,
            lead_id,
            "bounced_hard",
            None,
            now,
            delivery_id=touch.delivery_id,
            data={"channel": touch.channel, "reason": detail},
        )
        if touch.channel not in ADDRESS_OF:
            lead.suppressed_reason = reason


def _still_held(session: Session, plans: Sequence[Plan], me: str) -> set[int]:
    """The batch's enrollments job `me` still holds, locked until the batch is stored: a lease
    that ran out while the batch sent may have let another job claim some, and that job
    decides them again, so this one neither acts for them nor moves them on."""
    ids = [plan.item.id for plan in plans]
    table = ENROLLMENTS
    rows = session.scalars(
        select(table.c.id).where(table.c.id.in_(ids), table.c.claimed_by == me).with_for_update()
    )
    return set(rows)


def _defer_throttled(session: Session, touches: Sequence[Touch], me: str, now: datetime) -> None:
    """Touches their domain's rate held back: ``deferred`` with the reason, their attempt
    given back (the next run counts the same attempt again), and each deferral counted with
    its domain. Only rows still ``pending``, unmarked, of enrollments this job holds."""
    if not touches:
        return
    held = select(ENROLLMENTS.c.id).where(ENROLLMENTS.c.claimed_by == me)
    ours = (
        (DELIVERIES.c.id == bindparam("b_id"))
        & (DELIVERIES.c.status == "pending")
        & DELIVERIES.c.handed_by.is_(None)
        & DELIVERIES.c.enrollment_id.in_(held)
    )
    log = func.coalesce(DELIVERIES.c.error + "\n", "") + bindparam("b_error", type_=Text)
    rows = []
    for touch in touches:
        wait = touch.throttled
        assert wait is not None
        rows.append(
            {
                "b_id": touch.delivery_id,
                "b_attempts": touch.attempts - 1,
                "b_error": f"throttled: {wait.domain} is at its rate ({wait.rate}) at "
                f"{now.isoformat()}; deferred {wait.seconds:.1f} s",
            }
        )
    session.execute(
        update(DELIVERIES)
        .where(ours)
        .values(status="deferred", attempts=bindparam("b_attempts"), error=log),
        rows,
    )
    session.execute(
        THROTTLED.insert(),
        [
            {"delivery_id": t.delivery_id, "domain": t.throttled.domain, "at": now}
            for t in touches
            if t.throttled is not None
        ],
    )


STATE_COLUMNS: Final = (
    "cursor",
    "state",
    "next_run_at",
    "waiting_for",
    "iterations",
    "memory",
    "exit_reason",
    "ended_at",
)


def _prefixed(decision: Decision) -> dict[str, Any]:
    return {f"b_{name}": value for name, value in columns_of(decision.state).items()}
