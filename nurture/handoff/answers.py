"""Sales answer: accept an MQL, return it with a reason, report its stage, go away.

Only the lead's owner answers for it (one owner at a time). Stages move
forward only (`nurture.store.lifecycle`); `lost` sends the lead back to
nurture with its reason, as a return does. Each function raises
`AnswerError` with words for the person who asked, and changes nothing then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.engine.state import utc
from nurture.handoff.route import members, teams
from nurture.models import Lead, MqlRecord, RoundRobinTurn, SalesMember
from nurture.store.lifecycle import LifecycleError, return_to_nurture, transition

FEEDBACK: Final = ("sql", "opportunity", "won", "lost")
"""What sales may report: `won` is the `customer` stage, `lost` a return to nurture."""
MAX_AMOUNT: Final = Decimal("999999999999.99")


class AnswerError(ValueError):
    """Raised when an answer cannot be taken: not the owner, a stage backwards, no reason."""


class NotFound(AnswerError):
    """Raised when the lead or the sales member named does not exist."""


@dataclass(frozen=True, slots=True)
class Answered:
    """What an answer did, in words."""

    lead_id: int
    said: str
    changed: bool = True


def find_lead(session: Session, who: str) -> Lead:
    """A lead by email address or id; `AnswerError` when there is none."""
    who = who.strip()
    lead = (
        session.get(Lead, int(who))
        if who.isdigit() and len(who) < 19
        else session.scalar(select(Lead).where(Lead.email == who.lower()))
    )
    if lead is None:
        raise NotFound(f"no lead {who!r} (give an email address or a lead id)")
    return lead


def open_mql(session: Session, lead: Lead) -> MqlRecord | None:
    """The lead's latest MQL, if sales has not returned it."""
    record = session.scalar(
        select(MqlRecord)
        .where(MqlRecord.lead_id == lead.id)
        .order_by(MqlRecord.at.desc(), MqlRecord.id.desc())
        .limit(1)
    )
    return record if record is not None and record.returned_at is None else None


def accept(session: Session, lead: Lead, by: str, now: datetime) -> Answered:
    """`by` accepts the MQL they were given: it is theirs, and its SLA clock stops."""
    by = _owner(lead, by)
    record = open_mql(session, lead)
    if record is None:
        raise AnswerError(f"lead {lead.id} has no MQL waiting to be accepted")
    if record.accepted_at is not None:
        return Answered(lead.id, f"lead {lead.id} was already accepted by {by}", changed=False)
    record.accepted_at, record.remind_at = utc(now), None
    late = record.sla_due_at is not None and record.accepted_at > record.sla_due_at
    return Answered(lead.id, f"lead {lead.id} accepted by {by}" + (" (late)" if late else ""))


def give_back(session: Session, lead: Lead, by: str, reason: str, now: datetime) -> Answered:
    """`by` returns the lead to nurture with `reason`; it may qualify again on new behaviour."""
    by = _owner(lead, by)
    if not reason.strip():
        raise AnswerError("a return needs a reason (--reason)")
    try:
        done = return_to_nurture(session, lead, reason.strip(), utc(now), by=by)
    except LifecycleError as e:
        raise AnswerError(str(e)) from e
    if done is None:
        return Answered(lead.id, f"lead {lead.id} was already returned", changed=False)
    said = f"lead {lead.id} returned to nurture by {by}: {reason.strip()}"
    # the runtime imports the tracking service, which imports this module: import it late
    from nurture.runtime.enrolling import enroll_returned
    from nurture.runtime.loading import Graphs

    entered = enroll_returned(session, lead.id, utc(now), Graphs())
    if entered:
        campaigns = "a campaign" if len(entered) == 1 else f"{len(entered)} campaigns"
        verb = "enrolls" if len(entered) == 1 else "enroll"
        said += f"; it entered {campaigns} that {verb} when returned"
    return Answered(lead.id, said)


def report_stage(
    session: Session,
    lead: Lead,
    stage: str,
    by: str,
    now: datetime,
    *,
    amount: str | None = None,
    reason: str | None = None,
) -> Answered:
    """`by` reports the lead's stage: sql, opportunity, won (with an amount) or lost (with a
    reason). Reporting a stage accepts the MQL if it was not accepted yet."""
    if stage not in FEEDBACK:
        raise AnswerError(f"unknown stage {stage!r}; stages: {', '.join(FEEDBACK)}")
    by = _owner(lead, by)
    if stage == "lost":
        if not (reason or "").strip():
            raise AnswerError("a lost deal needs a reason (--reason)")
        return give_back(session, lead, by, f"lost: {(reason or '').strip()}", now)
    value = _amount(amount) if amount is not None else None
    to_stage = "customer" if stage == "won" else stage
    cause = f"{stage} reported by {by}" + (f": {reason.strip()}" if reason else "")
    try:
        done = transition(session, lead, to_stage, cause, utc(now), by=by, amount=value)
    except LifecycleError as e:
        raise AnswerError(str(e)) from e
    if done is None:
        return Answered(lead.id, f"lead {lead.id} is already {to_stage}", changed=False)
    record = open_mql(session, lead)
    if record is not None and record.accepted_at is None:
        record.accepted_at, record.remind_at = utc(now), None
    said = f"lead {lead.id} is {to_stage} now" + (f", amount {value}" if value else "")
    return Answered(lead.id, said)


def set_away(
    session: Session,
    routing: Mapping[str, Any] | None,
    member: str,
    until: datetime | None,
    now: datetime,
) -> Answered:
    """`member` is away until `until` (None: back now). Coming back, their round robin turns
    are raised to the team's pace, so they are not handed a burst to catch up."""
    member = member.strip().lower()
    known = members(routing)
    if member not in known:
        listed = ", ".join(sorted(known)) or "none (deploy a routing file with teams)"
        raise NotFound(f"no sales member {member!r}; members: {listed}")
    if until is not None and utc(until) <= utc(now):
        raise AnswerError(f"--until {until.isoformat()} is not in the future")
    row = session.get(SalesMember, member) or SalesMember(email=member)
    row.away_until = None if until is None else utc(until)
    session.add(row)
    if until is None:
        _catch_up(session, routing, member)
        return Answered(0, f"{member} is back and receives leads again")
    return Answered(0, f"{member} is away until {utc(until).isoformat()}")


def _catch_up(session: Session, routing: Mapping[str, Any] | None, member: str) -> None:
    for team, crew in teams(routing).items():
        weights = {m.email: m.weight for m in crew}
        if member not in weights:
            continue
        rows = {
            row.member: row
            for row in session.scalars(
                select(RoundRobinTurn).where(RoundRobinTurn.team == team).with_for_update()
            )
        }
        others = [r.turns / weights[m] for m, r in rows.items() if m != member and m in weights]
        mine = rows.get(member)
        if mine is not None and others:
            mine.turns = max(mine.turns, int(min(others) * weights[member]))


def _owner(lead: Lead, by: str) -> str:
    by = by.strip().lower()
    if not by:
        raise AnswerError("say who answers (--by)")
    if lead.owner is None:
        raise AnswerError(f"lead {lead.id} has no owner; only its owner may answer for it")
    if lead.owner.lower() != by:
        raise AnswerError(f"lead {lead.id} belongs to {lead.owner}, not {by}")
    return by


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise AnswerError(f"--amount {text!r} is not a number") from None
    if not value.is_finite() or value < 0 or value > MAX_AMOUNT:
        raise AnswerError(f"--amount {text!r} must be between 0 and {MAX_AMOUNT:,}")
    return value.quantize(Decimal("0.01"))
