"""The funnel over time, for `nurture report funnel` and the console's charts.

A lead counts in a month's column for a stage when it first reached that
stage or a later one in that month (a lead that jumped from ``mql`` to
``customer`` reached ``sql`` and ``opportunity`` then too): leads (MIL) by the
month they were created, the later stages by their stage changes. A lead
imported at a stage with no stage change has no date for it and is not in
these months (it is in the funnel's totals). The lead velocity rate of a month
is its MQLs against the month before; cost per MQL and ROMI (won amounts over
cost) take the month's costs of each kind (``source``, ``campaign``) and the
amounts won that month. By source, campaign and owner the same counts are
kept per name, with the costs of that name. The leads per month come from
`nurture.funnel_tally` (one query shared with the handoff, over each lead's
row of firsts); the amounts won by month are one grouped query over the
``customer`` stage changes themselves (a merged lead may have won twice, in
two months), the costs another.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.orm import Session

from nurture.funnel_tally import STAGES, Tallied, among, keyed, label, month_of
from nurture.models import (
    Cost,
    Lead,
    LifecycleTransition,
)

BY: Final = ("source", "campaign", "owner")
"""The selectors of the breakdown."""


@dataclass(frozen=True, slots=True)
class Month:
    """One month of one name (or of all leads): leads reaching each stage, won and cost."""

    month: str
    """``YYYY-MM``."""
    reached: dict[str, int]
    """`STAGES` -> leads that first reached it (or a later one) this month."""
    won: Decimal = Decimal(0)
    costs: dict[str, Decimal] = field(default_factory=dict)
    """The month's cost by kind (all months) or this name's cost (a breakdown)."""
    lead_velocity_rate: float | None = None
    """(MQLs - MQLs the month before) / MQLs the month before; None from zero."""

    def cost_per_mql(self, kind: str) -> Decimal | None:
        cost, mqls = self.costs.get(kind), self.reached["mql"]
        return None if cost is None or not mqls else (cost / mqls).quantize(Decimal("0.01"))

    def romi(self, kind: str) -> float | None:
        cost = self.costs.get(kind)
        return float(self.won / cost) if cost else None

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month,
            **self.reached,
            "won": float(self.won),
            "lead_velocity_rate": self.lead_velocity_rate,
            "costs": {k: float(v) for k, v in self.costs.items()},
            "cost_per_mql": {k: _float(self.cost_per_mql(k)) for k in self.costs},
            "romi": {k: self.romi(k) for k in self.costs},
        }


@dataclass(frozen=True, slots=True)
class Months:
    """The funnel by month: for all leads, and per source, campaign and owner."""

    months: tuple[str, ...]
    all: tuple[Month, ...]
    by: dict[str, dict[str, tuple[Month, ...]]]
    """`BY` -> name -> its months (every month of `months`, zeros included)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "months": list(self.months),
            "all": [m.to_json() for m in self.all],
            "by": {
                kind: {name: [m.to_json() for m in rows] for name, rows in named.items()}
                for kind, named in self.by.items()
            },
        }


def months(session: Session, ids: Any, tallied: Tallied) -> Months:
    """The funnel by month of the leads `ids` (a subquery of lead ids; None: all leads), with
    their `tally` (the counts by month)."""
    counts: dict[str, dict[str, dict[str, dict[str, int]]]] = {
        "": {"": tallied.everyone.months},
        **{
            kind: {name: t.months for name, t in named.items()}
            for kind, named in tallied.by.items()
        },
    }
    won = _won(session, ids, month_of(session))
    costs = _costs(session)
    seen = {m for named in counts.values() for rows in named.values() for m in rows}
    seen |= {m for (_, _, m) in won}
    first_leads = min((m for m in counts[""].get("", {})), default=None)
    seen |= {m for kind in costs for named in costs[kind].values() for m in named}
    listed = _every_month(sorted(m for m in seen if first_leads is None or m >= first_leads))
    overall_costs: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for kind, named in costs.items():
        for by_month in named.values():
            for m, amount in by_month.items():
                overall_costs[m][kind] = overall_costs[m].get(kind, Decimal(0)) + amount
    all_rows = _series(listed, counts[""].get("", {}), won, "", "", overall_costs)
    by: dict[str, dict[str, tuple[Month, ...]]] = {}
    for kind in BY:
        named_costs = costs.get(kind, {})
        by[kind] = {
            name: _series(
                listed,
                counts[kind][name],
                won,
                kind,
                name,
                {m: {kind: c} for m, c in named_costs.get(name, {}).items()},
            )
            for name in sorted(counts[kind])
        }
    return Months(listed, all_rows, by)


def _won(session: Session, ids: Any, month: Any) -> dict[tuple[str, str, str], Decimal]:
    """(kind, name, month) -> amounts won that month; kind "" for all leads (the sum of the
    sources). One query over the ``customer`` stage changes: a lead merged from two that had
    both won has two, in their own months."""
    sources = select(
        literal("source").label("kind"),
        Lead.id.label("lead_id"),
        func.coalesce(Lead.source, "").label("key"),
    )
    keys = keyed().subquery()
    both = union_all(sources, select(keys.c.kind, keys.c.lead_id, keys.c.key)).subquery()
    at = month(LifecycleTransition.at)
    query = (
        select(both.c.kind, both.c.key, at, func.sum(LifecycleTransition.amount))
        .join(both, both.c.lead_id == LifecycleTransition.lead_id)
        .where(
            LifecycleTransition.to_stage == "customer",
            among(LifecycleTransition.lead_id, ids),
        )
        .group_by(both.c.kind, both.c.key, at)
    )
    found: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for kind, key, m, amount in session.execute(query):
        found[(str(kind), str(key or ""), label(m))] += Decimal(str(amount or 0))
        if kind == "source":
            found[("", "", label(m))] += Decimal(str(amount or 0))
    return found


def _costs(session: Session) -> dict[str, dict[str, dict[str, Decimal]]]:
    """kind -> name -> ``YYYY-MM`` -> cost."""
    found: dict[str, dict[str, dict[str, Decimal]]] = defaultdict(lambda: defaultdict(dict))
    query = select(Cost.kind, Cost.name, Cost.month, func.sum(Cost.amount)).group_by(
        Cost.kind, Cost.name, Cost.month
    )
    for kind, name, month, amount in session.execute(query):
        key = month.strftime("%Y-%m") if isinstance(month, date | datetime) else str(month)[:7]
        found[str(kind)][str(name)][key] = Decimal(str(amount))
    return found


def _series(
    listed: tuple[str, ...],
    counted: dict[str, dict[str, int]],
    won: dict[tuple[str, str, str], Decimal],
    kind: str,
    name: str,
    costs: dict[str, dict[str, Decimal]],
) -> tuple[Month, ...]:
    rows: list[Month] = []
    before: int | None = None
    for m in listed:
        reached = {stage: counted.get(m, {}).get(stage, 0) for stage in STAGES}
        mqls = reached["mql"]
        rate = (mqls - before) / before if before else None
        rows.append(
            Month(m, reached, won.get((kind, name, m), Decimal(0)), dict(costs.get(m, {})), rate)
        )
        before = mqls
    return tuple(rows)


def _every_month(found: list[str]) -> tuple[str, ...]:
    """The months from the first to the last found, none skipped (a chart's x axis)."""
    if not found:
        return ()
    year, month = (int(p) for p in found[0].split("-"))
    last, listed = found[-1], []
    while (m := f"{year:04d}-{month:02d}") <= last:
        listed.append(m)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return tuple(listed)


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
