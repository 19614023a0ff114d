"""What is deployed and active: campaign versions, scoring, routing, segments, fields.

A campaign's active version is ``campaigns.current_version``. The other
definitions are versioned rows of ``definitions``; the active one of a
(kind, name) is its newest, and scoring, routing and fields, of which a
program has one each, are active by kind alone: the newest of any name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dsl.graph import Json, StepGraph, canonical_json
from nurture.models import Campaign, CampaignVersion, Definition

SINGLETONS: Final = ("scoring", "routing", "fields")
"""Kinds with one active definition per program; segments are active by name."""


def content_hash(body: Json) -> str:
    """The SHA-256 of the canonical JSON: equal content gives an equal hash."""
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def current_version(session: Session, campaign: str) -> CampaignVersion | None:
    """The version of `campaign` that new leads enter, or None when it was never deployed."""
    return session.scalars(
        select(CampaignVersion)
        .join(Campaign, Campaign.id == CampaignVersion.campaign_id)
        .where(Campaign.name == campaign, CampaignVersion.version == Campaign.current_version)
    ).one_or_none()


def current_graph(session: Session, campaign: str) -> StepGraph | None:
    """The current version's step graph, read back from its JSON."""
    version = current_version(session, campaign)
    return None if version is None else StepGraph.from_json(version.graph)


def active(session: Session, kind: str, name: str | None = None) -> Definition | None:
    """The active definition of `kind`, or None; segments need their `name`.

    For scoring, routing and fields a `name` is ignored: a deploy that renames
    the scoring model replaces the old one.
    """
    query = select(Definition).where(Definition.kind == kind)
    if kind not in SINGLETONS:
        if name is None:
            raise ValueError(f"a {kind} definition is found by name")
        query = query.where(Definition.name == name)
    return session.scalars(query.order_by(Definition.id.desc()).limit(1)).one_or_none()


def active_scoring(session: Session) -> dict[str, Any] | None:
    """The compiled scoring model new scores are computed with."""
    found = active(session, "scoring")
    return None if found is None else dict(found.body)


def active_routing(session: Session) -> dict[str, Any] | None:
    """The compiled routing rules and SLA."""
    found = active(session, "routing")
    return None if found is None else dict(found.body)


def active_segments(session: Session) -> dict[str, dict[str, Any]]:
    """Every segment's active condition, by name."""
    segments = select(func.max(Definition.id)).where(Definition.kind == "segment")
    newest = segments.group_by(Definition.name)
    rows = session.scalars(select(Definition).where(Definition.id.in_(newest)))
    return {row.name: dict(row.body) for row in sorted(rows, key=lambda r: r.name)}


def sla_of(routing: Mapping[str, Json] | None) -> timedelta | None:
    """The routing's `accept within` time, or None when the routing sets no SLA."""
    sla = (routing or {}).get("sla")
    if not isinstance(sla, dict) or not sla.get("seconds"):
        return None
    return timedelta(seconds=int(sla["seconds"]))
