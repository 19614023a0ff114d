"""Demo leads for ``nurture run --demo-leads N``: synthetic, real-looking B2B profiles.

They come from the dry run's generator (`nurture.simulate.leads`): personas,
titles, companies and time zones in North America, Europe and China. Their
addresses look real, so they are only ever written to the outbox folder
(``nurture run`` refuses demo leads when an SMTP server is configured).
Each gets a placeholder WeChat openid, and leads in China a phone number,
so every channel of the example campaigns has somewhere to go.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from dsl.graph import CompiledProgram, StepGraph
from nurture.models import Lead, Tag
from nurture.simulate.leads import Profile, synthetic_leads
from nurture.store.cleaning import COLUMNS

SOURCE: Final = "nurture run --demo-leads"


def demo_profiles(count: int, seed: int, graphs: Iterable[StepGraph]) -> list[Profile]:
    """`count` synthetic leads for the deployed campaigns (their fields and values)."""
    program = CompiledProgram(campaigns={g.name: g for g in graphs})
    return list(synthetic_leads(count, seed, program))


def add_demo_leads(session: Session, profiles: Iterable[Profile], now: datetime, seed: int) -> int:
    """Store the profiles as new leads (their triggers not run yet); how many were new."""
    rng = random.Random(seed)
    added = 0
    for profile in profiles:
        fields = dict(profile.fields)
        email = str(fields.pop("email", "")).lower()
        if not email or session.scalar(select(Lead.id).where(Lead.email == email)) is not None:
            continue
        lead = Lead(
            email=email,
            messaging_id=f"demo-openid-{rng.getrandbits(48):012x}",
            phone=f"+86139{rng.randrange(10**8):08d}" if fields.get("country") == "CN" else None,
            source=SOURCE,
            created_at=now,
            updated_at=now,
            **_columns(fields),
        )
        session.add(lead)
        session.flush()
        for tag in sorted(profile.tags):
            session.add(Tag(lead_id=lead.id, tag=tag, tagged_at=now))
        added += 1
    session.flush()
    return added


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    """Profile fields that are lead columns, and the rest as attributes."""
    fields.pop("source", None)
    fields.pop("name", None)
    columns = {k: fields.pop(k) for k in list(fields) if k in COLUMNS and fields[k] is not None}
    columns["attributes"] = {k: v for k, v in fields.items() if v is not None}
    return columns
