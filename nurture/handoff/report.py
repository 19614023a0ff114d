"""The handoff in `nurture report funnel`: MQL → accepted → SQL → opportunity → customer
by source, campaign and owner; the SLA kept or missed; why sales returned leads; and what
each source and campaign cost against what it won (cost per lead and MQL, ROMI).

A lead counts in a column once it reached that stage or one after it (by its
stage changes and its stage now); `accepted` counts leads with an accepted
MQL. Amounts are the `won` (customer) amounts sales reported. The columns by
source, campaign and owner come from `nurture.funnel_tally` (one query for
them and the funnel's months); the SLA, reasons and costs are a few grouped
queries each, whatever the number of leads.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import (
    and_,
    case,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from nurture.funnel_tally import Tallied, among
from nurture.models import (
    Assignment,
    Cost,
    MqlRecord,
)

COLUMNS: Final = ("leads", "mqls", "accepted", "sql", "opportunity", "customers")


@dataclass(frozen=True, slots=True)
class Group:
    """One source, campaign or owner: leads at each step of the handoff, won, and cost."""

    name: str
    leads: int
    mqls: int
    accepted: int
    sql: int
    opportunity: int
    customers: int
    won: Decimal
    cost: Decimal | None
    """What the source or campaign cost in the period; None: no cost imported."""

    @property
    def cost_per_lead(self) -> Decimal | None:
        return _ratio(self.cost, self.leads)

    @property
    def cost_per_mql(self) -> Decimal | None:
        return _ratio(self.cost, self.mqls)

    @property
    def romi(self) -> float | None:
        """Won amount over cost; None without a cost."""
        return float(self.won / self.cost) if self.cost else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["won"] = float(self.won)
        data["cost"] = None if self.cost is None else float(self.cost)
        for name in ("cost_per_lead", "cost_per_mql"):
            value = getattr(self, name)
            data[name] = None if value is None else float(value)
        data["romi"] = self.romi
        return data


@dataclass(frozen=True, slots=True)
class Keeping:
    """How one owner or team kept the SLA."""

    name: str
    mqls: int
    accepted: int
    in_time: int
    reassigned: int
    """MQLs the SLA took from them (owners), or moved within the team (teams)."""
    median_hours_to_accept: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Handoff:
    """The handoff part of the funnel report."""

    accepted: int
    by_source: tuple[Group, ...]
    by_campaign: tuple[Group, ...]
    by_owner: tuple[Group, ...]
    sla_by_owner: tuple[Keeping, ...]
    sla_by_team: tuple[Keeping, ...]
    return_reasons: tuple[tuple[str, int], ...]
    won: Decimal
    costs: Mapping[str, Decimal]
    """All costs of each kind (``source``, ``campaign``): two views of one spend, never
    added together."""

    def romi(self, kind: str) -> float | None:
        """Won amount over all costs of one kind; None without any."""
        cost = self.costs.get(kind)
        return float(self.won / cost) if cost else None

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "by_source": [g.to_json() for g in self.by_source],
            "by_campaign": [g.to_json() for g in self.by_campaign],
            "by_owner": [g.to_json() for g in self.by_owner],
            "sla_by_owner": [k.to_json() for k in self.sla_by_owner],
            "sla_by_team": [k.to_json() for k in self.sla_by_team],
            "return_reasons": [{"reason": r, "count": n} for r, n in self.return_reasons],
            "won": float(self.won),
            "costs": {kind: float(cost) for kind, cost in self.costs.items()},
            "romi": {kind: self.romi(kind) for kind in self.costs},
        }


def handoff(session: Session, ids: Any, since: datetime | None, tallied: Tallied) -> Handoff:
    """The handoff figures of the leads `ids` (a subquery of lead ids; None: all leads), with
    their `tally` (the columns by source, campaign and owner)."""
    first_month = date(since.year, since.month, 1) if since else None
    costs = _costs(session, first_month)
    groups = _groups(tallied, costs)
    by_source, by_campaign, by_owner = groups["source"], groups["campaign"], groups["owner"]
    sla_by_owner, sla_by_team = _keeping(session, ids)
    total_won = sum((g.won for g in by_source), Decimal(0))
    return Handoff(
        accepted=tallied.everyone.accepted,
        by_source=by_source,
        by_campaign=by_campaign,
        by_owner=by_owner,
        sla_by_owner=sla_by_owner,
        sla_by_team=sla_by_team,
        return_reasons=_reasons(session, ids),
        won=total_won,
        costs={kind: sum(named.values(), Decimal(0)) for kind, named in costs.items()},
    )


def _groups(
    tallied: Tallied, costs: Mapping[str, Mapping[str, Decimal]]
) -> dict[str, tuple[Group, ...]]:
    """kind -> one row per name (as `tally` orders them), with the name's cost of that kind."""
    return {
        kind: tuple(
            Group(
                name,
                t.leads,
                t.mqls,
                t.accepted,
                t.sql,
                t.opportunity,
                t.customers,
                t.won,
                costs.get(kind, {}).get(name),
            )
            for name, t in named.items()
        )
        for kind, named in tallied.by.items()
    }


def _keeping(session: Session, ids: Any) -> tuple[tuple[Keeping, ...], tuple[Keeping, ...]]:
    """Per owner, then per team: MQLs held, accepted, accepted in time, taken away, hours to
    accept. Counted in SQL; of the hours only the middle one or two per name are read (the
    MQLs ranked by their wait), not one row per MQL."""
    held = union_all(
        *(
            select(
                literal(kind).label("kind"),
                column.label("name"),
                MqlRecord.at,
                MqlRecord.accepted_at,
                MqlRecord.sla_due_at,
            ).where(column.is_not(None), among(MqlRecord.lead_id, ids))
            for kind, column in (("owner", MqlRecord.owner), ("team", MqlRecord.team))
        )
    ).subquery()
    accepted = held.c.accepted_at.is_not(None)
    in_time = and_(
        accepted, or_(held.c.sla_due_at.is_(None), held.c.accepted_at <= held.c.sla_due_at)
    )
    counted = select(
        held.c.kind,
        held.c.name,
        func.count(),
        func.count(held.c.accepted_at),
        func.sum(case((in_time, 1), else_=0)),
    ).group_by(held.c.kind, held.c.name)
    stats: dict[str, dict[str, list[Any]]] = {"owner": {}, "team": {}}
    for kind, name, n, took, kept in session.execute(counted):
        stats[str(kind)][str(name)] = [int(n), int(took), int(kept or 0), []]
    group = (held.c.kind, held.c.name)
    ranked = (
        select(
            held.c.kind,
            held.c.name,
            held.c.at,
            held.c.accepted_at,
            func.row_number().over(partition_by=group, order_by=_waited(session, held)).label("rn"),
            func.count().over(partition_by=group).label("n"),
        )
        .where(accepted)
        .subquery()
    )
    middle = select(ranked.c.kind, ranked.c.name, ranked.c.at, ranked.c.accepted_at).where(
        (2 * ranked.c.rn).in_([ranked.c.n, ranked.c.n + 1, ranked.c.n + 2])
    )
    for kind, name, at, accepted_at in session.execute(middle):
        stats[str(kind)][str(name)][3].append((accepted_at - at).total_seconds() / 3600)
    return _kept(session, ids, stats["owner"], Assignment.previous), _kept(
        session, ids, stats["team"], Assignment.team
    )


def _waited(session: Session, held: Any) -> Any:
    """How long an MQL waited to be accepted, as the database orders it (an interval on
    PostgreSQL; days as a number on SQLite, which keeps times as text)."""
    if session.get_bind().dialect.name == "sqlite":
        return func.julianday(held.c.accepted_at) - func.julianday(held.c.at)
    return held.c.accepted_at - held.c.at


def _kept(
    session: Session, ids: Any, stats: dict[str, list[Any]], taken_from: Any
) -> tuple[Keeping, ...]:
    taken = (
        select(taken_from, func.count())
        .where(
            taken_from.is_not(None),
            Assignment.owner.is_not(None),  # not the MQLs that stayed: nobody was left
            Assignment.cause.like("not accepted within%"),
            among(Assignment.lead_id, ids),
        )
        .group_by(taken_from)
    )
    moved = {str(name): int(count) for name, count in session.execute(taken)}
    for name in moved:  # one the SLA took every MQL from still has a row
        stats.setdefault(name, [0, 0, 0, []])
    return tuple(
        Keeping(
            name,
            n,
            accepted,
            in_time,
            moved.get(name, 0),
            round(statistics.median(hours), 1) if hours else None,
        )
        for name, (n, accepted, in_time, hours) in sorted(stats.items())
    )


def _reasons(session: Session, ids: Any) -> tuple[tuple[str, int], ...]:
    rows = session.execute(
        select(MqlRecord.return_reason, func.count())
        .where(MqlRecord.return_reason.is_not(None), among(MqlRecord.lead_id, ids))
        .group_by(MqlRecord.return_reason)
        .order_by(func.count().desc(), MqlRecord.return_reason)
    )
    return tuple((str(reason), int(count)) for reason, count in rows)


def _costs(session: Session, since: date | None) -> dict[str, dict[str, Decimal]]:
    """Costs by kind and name, summed over the months from `since` (all months when None)."""
    query = select(Cost.kind, Cost.name, func.sum(Cost.amount)).group_by(Cost.kind, Cost.name)
    if since is not None:
        query = query.where(Cost.month >= since)
    found: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for kind, name, amount in session.execute(query):
        found[str(kind)][str(name)] = Decimal(str(amount))
    return found


def _ratio(cost: Decimal | None, count: int) -> Decimal | None:
    if cost is None or not count:
        return None
    return (cost / count).quantize(Decimal("0.01"))
