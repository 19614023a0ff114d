"""Merging two leads found to be one person (same email, phone or messaging id).

Merges keep both histories. The survivor is the lead furthest along the
funnel (then the one with an owner, then the oldest); every event, tag,
enrollment, delivery, lifecycle transition and MQL record of the others moves
to it, an enrollment in a campaign the survivor is already in is exited (no
double sends), the earliest suppression of either wins (an unsubscribe is
never lost), each channel's consent is the newer of the two answers (a
withdrawal after a grant stays withdrawn; the source and time come with it),
the address suppressions recorded for the other lead are kept by address and
now name the survivor, the campaigns' `score +N` totals add up, empty profile fields
are filled, and a `LeadMerge` row plus an entry in
``attributes["merged_leads"]`` record what was merged, when and why; the survivor's row
of funnel firsts is recounted from the stage changes it now holds.
The merged leads are then deleted; `nurture.store.leads.resolve_lead_id` maps their old ids
(carried by unsubscribe links already sent) to the survivor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from nurture.models import (
    CampaignVersion,
    Consent,
    Delivery,
    Enrollment,
    Event,
    Lead,
    LeadMerge,
    LeadNote,
    LifecycleTransition,
    MqlRecord,
    Suppression,
    Tag,
)
from nurture.store.cleaning import ALIASES, COLUMNS, IDENTITY
from nurture.store.consents import record_consents
from nurture.store.funnel_firsts import refresh
from nurture.store.views import manual_score, with_manual_score

LIVE: Final = ("active", "waiting")
"""Enrollment states that may still send."""
MOVED: Final = (Event, Delivery, LifecycleTransition, MqlRecord, LeadNote, Suppression)
"""Tables whose rows move to the survivor as they are (enrollments and tags need care)."""


def merge_leads(session: Session, into: Lead, other: Lead, now: datetime, cause: str) -> None:
    """Merge `other` into `into`, keeping both histories; `other` is deleted.

    The caller commits. See the module docstring for what moves and what wins.
    """
    if into.id == other.id:
        raise ValueError(f"cannot merge lead {into.id} into itself")
    session.flush()
    snapshot = _snapshot(other)
    for model in MOVED:
        _move_rows(session, model, other.id, into.id)
    _move_enrollments(session, other.id, into.id, now)
    _move_tags(session, other.id, into.id)
    _move_consents(session, other.id, into.id)
    session.execute(
        update(LeadMerge)
        .where(LeadMerge.into_id == other.id)
        .values(into_id=into.id)
        .execution_options(synchronize_session="fetch")
    )
    _merge_profile(session, into, other)
    session.add(
        LeadMerge(merged_id=other.id, into_id=into.id, at=now, cause=cause, merged=snapshot)
    )
    merged = list((into.attributes or {}).get("merged_leads") or [])
    entry = {"id": other.id, "at": now.isoformat(), "cause": cause}
    into.attributes = {**(into.attributes or {}), "merged_leads": [*merged, entry]}
    session.delete(other)
    session.flush()
    refresh(session, [into.id])  # the other's stage changes are the survivor's now


def _move_rows(session: Session, model: Any, from_id: int, to_id: int) -> None:
    session.execute(
        update(model)
        .where(model.lead_id == from_id)
        .values(lead_id=to_id)
        .execution_options(synchronize_session="fetch")
    )


def _move_enrollments(session: Session, from_id: int, to_id: int, now: datetime) -> None:
    """Move enrollments; one in a campaign the survivor is running already is exited."""
    running = (
        select(CampaignVersion.campaign_id)
        .join(Enrollment, Enrollment.campaign_version_id == CampaignVersion.id)
        .where(Enrollment.lead_id == to_id, Enrollment.state.in_(LIVE))
    )
    survivor_campaigns = set(session.scalars(running))
    rows = session.execute(
        select(Enrollment, CampaignVersion.campaign_id)
        .join(CampaignVersion, Enrollment.campaign_version_id == CampaignVersion.id)
        .where(Enrollment.lead_id == from_id)
    )
    for enrollment, campaign_id in rows:
        enrollment.lead_id = to_id
        if enrollment.state in LIVE and campaign_id in survivor_campaigns:
            enrollment.state = "exited"
            enrollment.exit_reason = f"lead {from_id} merged into lead {to_id}, already enrolled"
            enrollment.ended_at = now
            enrollment.next_run_at = None
            enrollment.waiting_for = None
    session.flush()


def _move_tags(session: Session, from_id: int, to_id: int) -> None:
    have = select(Tag.tag).where(Tag.lead_id == to_id).scalar_subquery()
    session.execute(
        update(Tag)
        .where(Tag.lead_id == from_id, Tag.tag.not_in(have))
        .values(lead_id=to_id)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Tag).where(Tag.lead_id == from_id).execution_options(synchronize_session=False)
    )


def _move_consents(session: Session, from_id: int, to_id: int) -> None:
    """Each channel's newer answer wins (`record_consents`' rule); the other's rows go."""
    theirs = session.scalars(select(Consent).where(Consent.lead_id == from_id)).all()
    for row in theirs:
        record_consents(session, to_id, {row.channel: row.granted}, row.source, row.at)
    session.execute(
        delete(Consent)
        .where(Consent.lead_id == from_id)
        .execution_options(synchronize_session="fetch")
    )


SNAPSHOT: Final = (
    *IDENTITY,
    *COLUMNS,
    "stage",
    "owner",
    "attributes",
    "unsubscribed_at",
    "hard_bounced_at",
    "complained_at",
    "suppressed_reason",
    "created_at",
    "last_activity_at",
)


def _snapshot(lead: Lead) -> dict[str, Any]:
    values = {name: getattr(lead, name) for name in SNAPSHOT}
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def _merge_profile(session: Session, into: Lead, other: Lead) -> None:
    """Fill the survivor from the other lead: identities, empty columns, attributes, suppression."""
    identity = {key: getattr(other, key) for key in IDENTITY}
    for key in IDENTITY:
        setattr(other, key, None)
    session.flush()  # free the unique identity values before the survivor takes them
    attributes = {**(other.attributes or {}), **(into.attributes or {})}
    delta = manual_score(into.attributes) + manual_score(other.attributes)
    if delta:  # both leads' `score +N` steps ran: the merged lead has them all
        attributes = with_manual_score(attributes, delta)
    for key, value in identity.items():
        if value is not None:
            set_identity(into, attributes, key, value)
    for key in COLUMNS:
        if getattr(into, key) in (None, "", "UTC") and getattr(other, key) not in (None, ""):
            setattr(into, key, getattr(other, key))
    for key in ("unsubscribed_at", "hard_bounced_at", "complained_at"):
        setattr(into, key, _earliest(getattr(into, key), getattr(other, key)))
    into.suppressed_reason = into.suppressed_reason or other.suppressed_reason
    into.created_at = _earliest(into.created_at, other.created_at) or into.created_at
    into.last_activity_at = _latest(into.last_activity_at, other.last_activity_at)
    into.source = into.source or other.source
    into.attributes = attributes


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min((x for x in (a, b) if x is not None), default=None)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((x for x in (a, b) if x is not None), default=None)


def set_identity(lead: Lead, attributes: dict[str, Any], key: str, value: str) -> None:
    """Give the lead an identity value, or keep it as another one when it has its own."""
    current = getattr(lead, key)
    if current is None:
        setattr(lead, key, value)
    elif current != value:
        others = list(attributes.get(ALIASES[key]) or [])
        attributes[ALIASES[key]] = others if value in others else [*others, value]
