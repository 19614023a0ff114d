"""Leads in: cleaning, identity, dedup and merges, for the API, CSV imports and forms.

A record goes through three stages:

1. `prepare_lead` (pure, in `nurture.store.cleaning`): trims and normalises
   the fields, refuses values that cannot be stored (`InvalidLead`, every
   problem named by field), and gives the cleaning verdict: a test lead, a
   junk phone number, a disposable or a competitor's email domain is
   `skip`ped with a reason (`LeadRules` holds the lists and their defaults).
2. `store_lead`: finds the leads with the same email (lower-cased), phone
   (normalised) or messaging id. None: a new lead. One: it is updated.
   Several (the email names lead A, the phone lead B): they are merged into
   one (`nurture.store.merging`, which keeps both histories).
3. The profile is applied and the lead rescored with the active scoring model;
   the MQL rule is applied then too, as after an event (a profile change may
   make it hold).

Update policy. A given, non-empty profile value replaces the stored one (the
newest form fill is the best knowledge); an empty or missing one changes
nothing. Identity values are never replaced: a lead found by its phone that
arrives with another email keeps its email, and the new one is kept in
``attributes["other_emails"]`` (likewise ``other_phones``,
``other_messaging_ids``). Attributes are merged key by key. Tags are added,
never removed. Stage, scores and suppression are the engine's and cannot be
set here; an ``owner`` (from a CRM) is kept only by a lead that has none. A
lead is matched to its account (`nurture.handoff.accounts`): a customer's or
an open deal's lead goes to the account's owner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from dsl.vocabulary import STAGE_RANK
from nurture.engine.state import utc
from nurture.handoff.accounts import match_lead
from nurture.models import Assignment, Lead, LeadMerge, Tag
from nurture.store.cleaning import DEFAULT_RULES, CleanLead, LeadRules, SkippedLead, prepare_lead
from nurture.store.consents import record_consents
from nurture.store.definitions import active_routing
from nurture.store.merging import merge_leads, set_identity
from nurture.store.scoring import recheck_mql


@dataclass(frozen=True, slots=True)
class Stored:
    """What `store_lead` did: the lead, whether it is new, and the ids merged into it."""

    lead: Lead
    created: bool
    merged: tuple[int, ...] = ()


# ---------------------------------------------------------------- storing


def upsert_lead(
    session: Session, fields: Mapping[str, Any], now: datetime, *, rules: LeadRules = DEFAULT_RULES
) -> tuple[Lead, bool]:
    """Create or update the lead these fields identify: (lead, created).

    Raises `InvalidLead` for bad fields and `SkippedLead` when cleaning rejects
    the record; nothing is written then. The caller commits.
    """
    clean = prepare_lead(fields, rules)
    if clean.skip is not None:
        raise SkippedLead(clean.skip)
    stored = store_lead(session, clean, now)
    return stored.lead, stored.created


def store_lead(session: Session, clean: CleanLead, now: datetime) -> Stored:
    """Store a prepared record (its `skip` is not looked at): create, update or merge."""
    now = utc(now)
    matches = find_leads(session, **clean.identity())
    merged: list[int] = []
    if not matches:
        lead = Lead(created_at=now, updated_at=now, attributes={})
        session.add(lead)
    else:
        lead, *others = sorted(matches, key=_survivor_order)
        for other in others:
            merged.append(other.id)
            merge_leads(
                session, lead, other, now, f"same {_shared(clean, other)} as lead {lead.id}"
            )
    _apply(lead, clean, now)
    session.flush()
    _add_tags(session, lead.id, clean.tags, now)
    if clean.consent:
        record_consents(session, lead.id, clean.consent, clean.consent_source or "api", now)
    _own(session, lead, clean.columns.get("owner"), now)
    if lead.account_id is None:
        match_lead(session, lead, active_routing(session), now)
    what = "a profile update" if matches else "the lead's creation"
    recheck_mql(session, lead.id, f"{what} (lead import)", now)
    return Stored(lead, not matches, tuple(merged))


def find_leads(
    session: Session,
    *,
    email: str | None = None,
    phone: str | None = None,
    messaging_id: str | None = None,
) -> list[Lead]:
    """The leads with any of these (normalised) identity values, oldest first, locked for update."""
    given = [(Lead.email, email), (Lead.phone, phone), (Lead.messaging_id, messaging_id)]
    clauses = [column == value for column, value in given if value is not None]
    if not clauses:
        return []
    query = select(Lead).where(or_(*clauses)).order_by(Lead.id).with_for_update()
    return list(session.scalars(query))


def resolve_lead_id(session: Session, lead_id: int) -> int | None:
    """The lead that `lead_id` is now: itself, the lead it was merged into, or None."""
    if session.get(Lead, lead_id) is not None:
        return lead_id
    return session.scalar(select(LeadMerge.into_id).where(LeadMerge.merged_id == lead_id))


def _survivor_order(lead: Lead) -> tuple[int, bool, int]:
    return (-STAGE_RANK.get(lead.stage or "lead", 0), lead.owner is None, lead.id)


def _shared(clean: CleanLead, other: Lead) -> str:
    same = [k for k, v in clean.identity().items() if getattr(other, k) == v]
    return " and ".join(same) or "identity"


def _apply(lead: Lead, clean: CleanLead, now: datetime) -> None:
    attributes = dict(lead.attributes or {})
    for key, value in clean.identity().items():
        set_identity(lead, attributes, key, value)
    for key, text in clean.columns.items():
        if key != "owner":  # `_own` decides
            setattr(lead, key, text)
    attributes.update(clean.attributes)
    lead.attributes = attributes
    lead.updated_at = now


def _own(session: Session, lead: Lead, owner: str | None, now: datetime) -> None:
    """An imported owner (a CRM's) is the lead's when it has none yet, recorded as assigned."""
    owner = (owner or "").strip().lower()
    if not owner or lead.owner is not None:
        return
    lead.owner = owner
    session.add(
        Assignment(
            lead_id=lead.id,
            owner=owner,
            how="owner",
            cause="lead import",
            reason=f"imported with its owner {owner}",
            at=now,
        )
    )
    session.flush()


def _add_tags(session: Session, lead_id: int, tags: Sequence[str], now: datetime) -> None:
    if not tags:
        return
    have = set(session.scalars(select(Tag.tag).where(Tag.lead_id == lead_id)))
    session.add_all(Tag(lead_id=lead_id, tag=t, tagged_at=now) for t in tags if t not in have)
    session.flush()
