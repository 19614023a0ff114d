"""Recording delivery feedback, whatever way it came back: a DSN, an ARF report, an ESP event.

Every inbound path (``nurture bounces``, the ESP webhooks) turns what it read
into a `Feedback` and calls `record` inside its own transaction. Recording is
idempotent by (source, key): the source's own event id, or a DSN's
Message-ID, is stored in ``feedback_receipts`` with a unique constraint, so a
replayed webhook or a DSN delivered twice records nothing the second time.

What each kind does to the delivery's lead (as events, so scoring, waits and
the engine's ``bounced`` / ``opened`` / ``clicked`` conditions see them):

- ``bounced`` hard (5.x.x): a ``bounced_hard`` event naming the delivery's
  channel, which closes that channel for the lead's address on it (not the
  others: an email bounce does not stop SMS).
- ``bounced`` soft (4.x.x): a ``bounced_soft`` event, counted per address
  and per message (a second report about the same delivery is no second
  bounce); when `BouncePolicy.soft_limit` messages soft-bounced within one
  window of `BouncePolicy.window` (both ends included), the bounce that
  completes them is recorded as hard instead (a mailbox full for a week is
  as good as gone). Reports may arrive out of order (a webhook retried hours
  later): the windows around this one's time are counted, not only the one
  ending at it.
- ``complained``: the lead receives nothing, ever (``complained_at``).
- ``unsubscribed``: closes the delivery's channel for the lead.
- ``delivered``, ``opened``, ``clicked``: the event of that name.

Any feedback on a delivery whose outcome is ``unknown`` (its job died
mid-send) proves the message went out: it becomes ``sent``, as if an
operator had confirmed it (`nurture.runtime.operations.release`), and its
enrollment moves on without sending it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nurture.engine.state import utc
from nurture.models import Delivery, FeedbackReceipt, Lead
from nurture.store.leads import resolve_lead_id
from nurture.store.scoring import record_event
from nurture.store.suppressions import address_hash, addresses
from nurture.store.wake import wake_waiting

if TYPE_CHECKING:
    from nurture.config import Settings

KINDS: Final = ("delivered", "bounced", "complained", "opened", "clicked", "unsubscribed")


class FeedbackError(ValueError):
    """Feedback that cannot be recorded (an unknown delivery, a kind that is not one);
    the message names what and is meant for the sender of the feedback."""


@dataclass(frozen=True, slots=True)
class Feedback:
    """One thing a receiving server or an ESP said about one delivery."""

    delivery_id: int
    kind: str
    """``delivered``, ``bounced``, ``complained``, ``opened``, ``clicked`` or ``unsubscribed``."""
    at: datetime
    """When it happened (aware; stored as UTC)."""
    source: str
    """``dsn``, ``arf``, ``ses``, ``sendgrid``, ``postmark``, ``mailgun``, ..."""
    key: str
    """Idempotency key, unique within `source` (the provider's event id, a DSN's Message-ID)."""
    hard: bool | None = None
    """For bounces: permanent (5.x.x) or transient (4.x.x); None counts as hard."""
    detail: str = ""
    """The status code and diagnostic text, kept on the event."""
    url: str | None = None
    """For clicks: the URL clicked."""


@dataclass(frozen=True, slots=True)
class BouncePolicy:
    """When soft bounces become hard: `soft_limit` of one address within `window`."""

    soft_limit: int = 3
    window: timedelta = timedelta(days=7)

    @classmethod
    def of(cls, settings: Settings) -> BouncePolicy:
        """``NURTURE_SOFT_BOUNCES`` and ``NURTURE_SOFT_BOUNCE_WINDOW``."""
        return cls(settings.soft_bounces, timedelta(seconds=settings.soft_bounce_window))


def record(
    session: Session,
    feedback: Feedback,
    policy: BouncePolicy | None = None,
    *,
    woken: list[int] | None = None,
) -> bool:
    """Record `feedback` in the caller's transaction; False when it was already recorded.

    Raises `FeedbackError` (nothing written) for an unknown kind or delivery.
    The ids of enrollments made due (they waited for an event) are appended to
    `woken`, for the caller to enqueue after its commit; the scheduler finds
    them anyway.
    """
    if feedback.kind not in KINDS:
        raise FeedbackError(f"unknown feedback kind {feedback.kind!r}; kinds: {', '.join(KINDS)}")
    if not feedback.key or len(feedback.key) > 255 or not feedback.source:
        raise FeedbackError("feedback needs a source and a key of 1 to 255 characters")
    delivery = session.get(Delivery, feedback.delivery_id)
    if delivery is None:
        raise FeedbackError(f"no delivery {feedback.delivery_id}")
    if _seen(session, feedback.source, feedback.key):
        return False
    lead_id = resolve_lead_id(session, delivery.lead_id) or delivery.lead_id
    lead = session.get(Lead, lead_id)
    if lead is None:  # pragma: no cover - a delivery's lead is deleted with it
        raise FeedbackError(f"no lead for delivery {delivery.id}")
    at = utc(feedback.at)
    address = addresses(lead).get(delivery.channel)
    digest = None if address is None else address_hash(delivery.channel, address)
    receipt = FeedbackReceipt(
        source=feedback.source[:32],
        key=feedback.key,
        delivery_id=delivery.id,
        kind=feedback.kind,
        hard=feedback.hard if feedback.kind == "bounced" else None,
        address_hash=digest,
        at=at,
    )
    try:
        with session.begin_nested():
            session.add(receipt)
            session.flush()
    except IntegrityError:  # recorded by someone else since we looked
        return False
    event_type, data = _event(session, feedback, delivery, digest, policy or BouncePolicy())
    record_event(
        session,
        lead.id,
        event_type,
        None,
        at,
        link=feedback.url if feedback.kind == "clicked" else None,
        delivery_id=delivery.id,
        data=data,
    )
    ids = wake_waiting(session, lead.id, at)
    if delivery.status == "unknown":  # the receiving side has it: it was sent after all
        # imported here: the runtime package imports the tracking app, whose ESP routes import
        # this module
        from nurture.runtime.operations import release

        by = f"{feedback.source} feedback ({feedback.kind})"
        ids += release(session, [delivery.id], at, by=by, delivered=True)
    if woken is not None:
        woken.extend(i for i in ids if i not in woken)
    return True


def _seen(session: Session, source: str, key: str) -> bool:
    found = session.scalar(
        select(FeedbackReceipt.id).where(
            FeedbackReceipt.source == source[:32], FeedbackReceipt.key == key
        )
    )
    return found is not None


def _event(
    session: Session,
    feedback: Feedback,
    delivery: Delivery,
    digest: str | None,
    policy: BouncePolicy,
) -> tuple[str, dict[str, Any]]:
    """The event type to record and its data."""
    data: dict[str, Any] = {"source": feedback.source, "channel": delivery.channel}
    if feedback.detail:
        data["detail"] = feedback.detail[:1000]
    if feedback.kind == "bounced":
        if feedback.hard is False:
            count = _soft_bounces(session, digest, utc(feedback.at), policy)
            data["soft_bounces"] = count
            if count < policy.soft_limit:
                return "bounced_soft", data
            data["after"] = f"{count} soft bounces within {policy.window}"
        return "bounced_hard", data
    if feedback.kind == "complained":
        return "complained", data
    if feedback.kind == "clicked" and feedback.url:
        data["url"] = feedback.url
    return feedback.kind, data


def _soft_bounces(session: Session, digest: str | None, at: datetime, policy: BouncePolicy) -> int:
    """The most messages to the address that soft-bounced within one window holding `at`
    (this bounce, already stored, included)."""
    if digest is None:
        return 1
    rows = session.execute(
        select(FeedbackReceipt.delivery_id, FeedbackReceipt.at).where(
            FeedbackReceipt.address_hash == digest,
            FeedbackReceipt.kind == "bounced",
            FeedbackReceipt.hard.is_(False),
            FeedbackReceipt.at >= at - policy.window,
            FeedbackReceipt.at <= at + policy.window,
        )
    ).all()
    seen = [(utc(when), delivery) for delivery, when in rows]
    starts = {when for when, _ in seen if when <= at}
    return max(
        (
            len({d for when, d in seen if start <= when <= start + policy.window})
            for start in starts
        ),
        default=1,
    )
