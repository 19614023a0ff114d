"""What an operator does about deliveries: list the ``unknown`` ones, release them.

A delivery is ``unknown`` when a job died between calling the channel and
storing its answer: the message may or may not have gone out. The runtime
never resends it on its own, and holds its enrollment. An operator looks
(the SMTP server's log, the provider's dashboard) and either

- releases it for resending (`release`): the row becomes ``deferred`` with an
  audit note and its enrollment is due at once; the next run sends it again,
  under the same Message-ID; or
- confirms it was delivered (`release(..., delivered=True)`): the row becomes
  ``sent`` and the enrollment moves on without sending.

Either way the note (who, when, why) is appended to the row's ``error``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from nurture.models import (
    Campaign,
    CampaignVersion,
    Delivery,
    Enrollment,
    Lead,
    ThrottleDeferral,
)

MAX_ID = 2**31 - 1
"""The largest id the databases store; a larger one names no delivery."""


class ReleaseError(ValueError):
    """Raised when a delivery cannot be released: unknown id, or not ``unknown``."""


@dataclass(frozen=True, slots=True)
class UnknownDelivery:
    """One ``unknown`` delivery, with what an operator needs to look it up."""

    id: int
    lead_id: int
    to: str | None
    campaign: str
    step: str
    iteration: int
    channel: str
    template: str
    message_id: str
    created_at: datetime
    attempts: int
    note: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "lead_id": self.lead_id,
            "to": self.to,
            "campaign": self.campaign,
            "step": self.step,
            "iteration": self.iteration,
            "channel": self.channel,
            "template": self.template,
            "message_id": self.message_id,
            "created_at": self.created_at.isoformat(),
            "attempts": self.attempts,
            "note": self.note,
        }


def unknown_deliveries(session: Session, limit: int | None = None) -> list[UnknownDelivery]:
    """The ``unknown`` deliveries, oldest first."""
    query = (
        select(
            Delivery.id,
            Delivery.lead_id,
            Lead.email,
            Lead.phone,
            Lead.messaging_id,
            Campaign.name,
            Delivery.step_id,
            Delivery.iteration,
            Delivery.channel,
            Delivery.template,
            Delivery.message_id,
            Delivery.created_at,
            Delivery.attempts,
            Delivery.error,
        )
        .join(Lead, Lead.id == Delivery.lead_id)
        .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
        .join(CampaignVersion, CampaignVersion.id == Enrollment.campaign_version_id)
        .join(Campaign, Campaign.id == CampaignVersion.campaign_id)
        .where(Delivery.status == "unknown")
        .order_by(Delivery.created_at, Delivery.id)
        .limit(limit)
    )
    found = []
    for r in session.execute(query):
        to = {"email": r.email, "sms": r.phone, "wechat": r.messaging_id}.get(r.channel)
        found.append(
            UnknownDelivery(
                r.id,
                r.lead_id,
                to,
                r.name,
                r.step_id,
                r.iteration,
                r.channel,
                r.template,
                r.message_id,
                r.created_at,
                r.attempts,
                r.error,
            )
        )
    return found


def status_counts(session: Session) -> dict[str, int]:
    """How many deliveries have each status."""
    rows = session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
    return {status: int(count) for status, count in sorted(rows)}


def throttle_counts(session: Session) -> list[dict[str, Any]]:
    """Per receiving domain: deferrals by its rate, the deliveries they held back, how many
    of those still wait (``deferred``/``pending``), and the last deferral's time."""
    waiting = func.count(func.distinct(Delivery.id)).filter(
        Delivery.status.in_(("deferred", "pending"))
    )
    rows = session.execute(
        select(
            ThrottleDeferral.domain,
            func.count(),
            func.count(func.distinct(ThrottleDeferral.delivery_id)),
            waiting,
            func.max(ThrottleDeferral.at),
        )
        .join(Delivery, Delivery.id == ThrottleDeferral.delivery_id)
        .group_by(ThrottleDeferral.domain)
        .order_by(func.count().desc(), ThrottleDeferral.domain)
    )
    return [
        {
            "domain": domain,
            "deferrals": int(deferrals),
            "deliveries": int(deliveries),
            "waiting": int(still),
            "last": last.isoformat() if last is not None else None,
        }
        for domain, deferrals, deliveries, still, last in rows
    ]


def release(
    session: Session,
    ids: Sequence[int],
    now: datetime,
    *,
    by: str,
    reason: str = "",
    delivered: bool = False,
) -> list[int]:
    """Release ``unknown`` deliveries for resending (or mark them delivered); all or none.

    Raises `ReleaseError` naming every id that does not exist or is not
    ``unknown``; then nothing changes. Returns the enrollments made due.
    """
    rows = session.scalars(
        select(Delivery)
        .where(Delivery.id.in_([i for i in ids if 1 <= i <= MAX_ID]))
        .with_for_update()
    ).all()
    found = {row.id: row for row in rows}
    problems = [f"{i}: no such delivery" for i in ids if i not in found]
    problems += [
        f"{row.id}: it is {row.status}, not unknown" for row in rows if row.status != "unknown"
    ]
    if problems:
        raise ReleaseError("cannot release " + "; ".join(problems))
    action = "confirmed delivered" if delivered else "released for resending"
    why = f": {reason}" if reason else ""
    for row in rows:
        note = f"{action} by {by} at {now.isoformat()}{why}"
        row.error = f"{row.error}\n{note}" if row.error else note
        row.status = "sent" if delivered else "deferred"
        if delivered:
            row.sent_at = row.sent_at or now
    enrollments = sorted({row.enrollment_id for row in rows})
    session.execute(
        update(Enrollment)
        .where(Enrollment.id.in_(enrollments), Enrollment.state.in_(("active", "waiting")))
        .values(next_run_at=now)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return enrollments
