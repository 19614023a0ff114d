"""The funnel's per-lead counts in one statement, for the handoff columns and the months.

The handoff (`nurture.handoff.report`: leads, MQLs, accepted, SQL, opportunity,
customers and won by source, campaign and owner) and the funnel by month
(`nurture.funnel_months`) both count each lead by its source, campaign and
owner. Per lead they need the same few values: its source, the months it was
created and first reached each stage (or a later one), its furthest stage,
whether sales accepted an MQL of it, and what it won — read from the lead and
its row of firsts (`nurture.store.funnel_firsts`). One query reads them once
per lead and groups the leads by name and by all of those values together (few
distinct combinations even at a million leads); each group is then counted in
Python in every column and month it belongs to. The names come out in the
report's order: by kind, most leads first, then by name, as the database
sorts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import case, func, literal, literal_column, select, true, union_all
from sqlalchemy.orm import Session

from nurture.models import Campaign, CampaignVersion, Enrollment, FunnelFirst, Lead, MqlRecord

RANKS: Final = {"mql": 1, "sql": 2, "opportunity": 3, "customer": 4}
STAGES: Final = ("leads", "mql", "sql", "opportunity", "customer")
"""The columns of a month: MIL (leads created), then the stages reached."""
KINDS: Final = ("source", "campaign", "owner")


@dataclass(slots=True)
class Tally:
    """One source, campaign or owner (or all leads): the handoff's columns and its months."""

    leads: int = 0
    mqls: int = 0
    accepted: int = 0
    sql: int = 0
    opportunity: int = 0
    customers: int = 0
    won: Decimal = Decimal(0)
    months: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    """``YYYY-MM`` -> `STAGES` -> leads that first reached it (or a later one) that month."""

    def add(self, n: int, rank: int, took: bool, won: Decimal, at: list[str | None]) -> None:
        self.leads += n
        self.mqls += n if rank >= 1 else 0
        self.accepted += n if took else 0
        self.sql += n if rank >= 2 else 0
        self.opportunity += n if rank >= 3 else 0
        self.customers += n if rank >= 4 else 0
        self.won += won
        for stage, month in zip(STAGES, at, strict=True):
            if month is not None:
                self.months[month][stage] = self.months[month].get(stage, 0) + n


@dataclass(frozen=True, slots=True)
class Tallied:
    """`KINDS` -> name -> `Tally`, in the report's order; `everyone` for all leads."""

    by: dict[str, dict[str, Tally]]
    everyone: Tally


def among(column: Any, ids: Any) -> Any:
    """``column IN ids``, or no condition at all when `ids` is None (every lead): the report
    of all leads then scans no subquery of every lead's id in each of its queries."""
    return true() if ids is None else column.in_(ids)


def tally(session: Session, ids: Any) -> Tallied:
    """The leads `ids` (a subquery of lead ids; None: all leads) counted by source, campaign
    and owner, in one query."""
    month = month_of(session)
    per_lead = _per_lead(ids, month).cte("per_lead")
    values = (
        *(per_lead.c[stage] for stage in STAGES),
        per_lead.c.r,
        per_lead.c.took,
    )
    counted = (func.count().label("n"), func.sum(per_lead.c.won).label("won"))
    by_source = select(
        literal("source").label("kind"),
        per_lead.c.source.label("key"),
        *values,
        *counted,
        func.sum(func.count()).over(partition_by=per_lead.c.source).label("total"),
    ).group_by(per_lead.c.source, *values)
    keys = keyed().subquery()
    by_key = (
        select(
            keys.c.kind,
            keys.c.key,
            *values,
            *counted,
            func.sum(func.count()).over(partition_by=(keys.c.kind, keys.c.key)).label("total"),
        )
        .join(per_lead, per_lead.c.lead_id == keys.c.lead_id)
        .group_by(keys.c.kind, keys.c.key, *values)
    )
    query = union_all(by_source, by_key).order_by(
        literal_column("kind"), literal_column("total").desc(), literal_column("key")
    )
    by: dict[str, dict[str, Tally]] = {kind: {} for kind in KINDS}
    everyone = Tally()
    for kind, key, *at, rank, took, n, won, _ in session.execute(query):
        labels = [None if m is None else label(m) for m in at]
        amount = Decimal(str(won or 0))
        args = (int(n), int(rank), bool(took), amount, labels)
        by[str(kind)].setdefault(str(key or ""), Tally()).add(*args)
        if kind == "source":  # a lead has one source: all leads are the sum of the sources
            everyone.add(*args)
    return Tallied(by, everyone)


def month_of(session: Session) -> Any:
    """The month of a timestamp column, in the database's own words: PostgreSQL's
    ``date_trunc`` (half of ``to_char``'s time over a million rows; `label` names it),
    SQLite's ``strftime`` (times are text there). The unit and format are inline, so the
    grouped and the selected expression are one to the database."""
    if session.get_bind().dialect.name == "postgresql":
        return lambda column: func.date_trunc(literal_column("'month'"), column)
    return lambda column: func.strftime(literal_column("'%Y-%m'"), column)


def label(month: Any) -> str:
    """``YYYY-MM`` of what `month_of` gave (a datetime in the session's time zone, or text)."""
    return month.strftime("%Y-%m") if isinstance(month, datetime) else str(month)


def _per_lead(ids: Any, month: Any) -> Any:
    """Per lead: its source, the months it was created and first reached each stage or a
    later one, its furthest stage by its stage changes and its stage now, whether sales
    accepted an MQL of it, and what it won."""
    stage = case(*((Lead.stage == s, r) for s, r in RANKS.items()), else_=0)
    moved = func.coalesce(FunnelFirst.furthest, 0)
    took = select(MqlRecord.lead_id).where(MqlRecord.accepted_at.is_not(None)).distinct().subquery()
    return (
        select(
            Lead.id.label("lead_id"),
            func.coalesce(Lead.source, "").label("source"),
            month(Lead.created_at).label("leads"),
            *(month(getattr(FunnelFirst, f"{s}_at")).label(s) for s in RANKS),
            case((moved > stage, moved), else_=stage).label("r"),
            took.c.lead_id.is_not(None).label("took"),
            FunnelFirst.won.label("won"),
        )
        .outerjoin(FunnelFirst, FunnelFirst.lead_id == Lead.id)
        .outerjoin(took, took.c.lead_id == Lead.id)
        .where(among(Lead.id, ids))
    )


def keyed() -> Any:
    """(kind, lead_id, key): each lead's campaigns (by name) and owners (of its MQLs)."""
    campaigns = (
        select(Enrollment.lead_id.label("lead_id"), Campaign.name.label("key"))
        .join(CampaignVersion, CampaignVersion.id == Enrollment.campaign_version_id)
        .join(Campaign, Campaign.id == CampaignVersion.campaign_id)
        .distinct()
        .subquery()
    )
    owners = (
        select(MqlRecord.lead_id.label("lead_id"), MqlRecord.owner.label("key"))
        .where(MqlRecord.owner.is_not(None))
        .distinct()
        .subquery()
    )
    return union_all(
        select(literal("campaign").label("kind"), campaigns.c.lead_id, campaigns.c.key),
        select(literal("owner").label("kind"), owners.c.lead_id, owners.c.key),
    )
