"""The deliveries page's data: touches whose outcome is unknown, and touches that failed.

Unknown ones are `nurture.runtime.operations.unknown_deliveries` (``nurture
report deliveries --unknown``); failed ones are listed with their reason, the
newest first. At most `LIMIT` of each, and how many there are of every status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.models import Campaign, CampaignVersion, Delivery, Enrollment
from nurture.runtime.operations import UnknownDelivery, status_counts, unknown_deliveries

LIMIT: Final = 200


@dataclass(frozen=True, slots=True)
class Deliveries:
    unknown: list[UnknownDelivery]
    failed: list[Any]
    """Rows of (id, lead_id, campaign, channel, template, error, created_at)."""
    counts: dict[str, int]


def deliveries(session: Session) -> Deliveries:
    """Unknown and failed touches (three queries with the counts)."""
    failed = session.execute(
        select(
            Delivery.id,
            Delivery.lead_id,
            Campaign.name.label("campaign"),
            Delivery.channel,
            Delivery.template,
            Delivery.error,
            Delivery.created_at,
        )
        .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
        .join(CampaignVersion, CampaignVersion.id == Enrollment.campaign_version_id)
        .join(Campaign, Campaign.id == CampaignVersion.campaign_id)
        .where(Delivery.status == "failed")
        .order_by(Delivery.created_at.desc(), Delivery.id.desc())
        .limit(LIMIT)
    ).all()
    return Deliveries(unknown_deliveries(session, LIMIT), list(failed), status_counts(session))
