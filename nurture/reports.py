"""The analyst's reports: the funnel and one campaign, counted in SQL over the data model.

`funnel` reads each lead's stage changes summed up in one row
(`nurture.store.funnel_firsts`, kept with every change) and the MQL records:
how many leads reached each stage (a lead that jumped a stage, say straight
to ``sql``, counts as having reached the ones it passed), the conversion from each stage to the
next, days from a lead's creation to its MQL, the lead velocity rate (this
month's MQLs against last month's), the MQLs waiting on sales, within or past
their SLA, and the handoff (`nurture.handoff.report`): the same steps by
source, campaign and owner, the SLA kept, return reasons, costs and ROMI.

`campaign` reads enrollments, deliveries and the events that name a delivery:
per version, where enrollments stand and why they left; per step, sends and
unique opens, clicks, bounces and unsubscribes. Each count is one grouped
query, so a report costs a few queries whatever the number of leads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Select, and_, case, distinct, func, select
from sqlalchemy.orm import Session

from dsl.graph import StepGraph
from nurture.engine.state import utc
from nurture.funnel_months import Months, months
from nurture.funnel_tally import among, tally
from nurture.handoff.report import Handoff, handoff
from nurture.models import (
    STAGES,
    Campaign,
    CampaignVersion,
    Delivery,
    Enrollment,
    Event,
    FunnelFirst,
    Lead,
    MqlRecord,
)
from nurture.split_report import SplitResult, split_results

FUNNEL: Final = tuple(s for s in STAGES if s != "returned")
"""The stages in funnel order; `returned` is a way back, reported beside them."""
ENGAGEMENT: Final = ("opened", "clicked", "bounced_hard", "complained", "unsubscribed")
"""Event types counted per step, each once per delivery."""


@dataclass(frozen=True, slots=True)
class Stage:
    """One funnel stage: leads there now, leads that ever reached it, and from the stage before."""

    stage: str
    now: int
    reached: int
    conversion: float | None
    """`reached` over the previous stage's `reached`; None for the first stage or from zero."""


@dataclass(frozen=True, slots=True)
class Source:
    """Leads of one source (``lead.source``; empty: unknown) and how many became MQLs."""

    source: str
    leads: int
    mqls: int

    @property
    def rate(self) -> float | None:
        return self.mqls / self.leads if self.leads else None


@dataclass(frozen=True, slots=True)
class Funnel:
    """What `nurture report funnel` prints."""

    since: datetime | None
    leads: int
    stages: tuple[Stage, ...]
    returned: int
    """Leads sales returned to nurture (they may be at any stage again)."""
    days_to_mql_median: float | None
    days_to_mql_p90: float | None
    mqls_this_month: int
    mqls_last_month: int
    sla_waiting: int
    """MQLs sales has not answered yet (still at ``mql``), within their SLA deadline."""
    sla_overdue: int
    """MQLs sales has not answered yet, past their SLA deadline."""
    sales: Handoff
    """The handoff: accepted, SQL, opportunity and customers by source, campaign and owner,
    the SLA kept, return reasons, costs and ROMI (`nurture.handoff.report`)."""
    months: Months
    """The funnel by month, for all leads and by source, campaign and owner, with the
    lead velocity rate, cost per MQL and ROMI of each month (`nurture.funnel_months`)."""

    @property
    def sources(self) -> tuple[Source, ...]:
        """Leads and MQLs by source (the first columns of `sales.by_source`)."""
        return tuple(Source(g.name, g.leads, g.mqls) for g in self.sales.by_source)

    @property
    def lead_velocity_rate(self) -> float | None:
        """(MQLs this month - last month) / last month, as a fraction; None without last month."""
        if not self.mqls_last_month:
            return None
        return (self.mqls_this_month - self.mqls_last_month) / self.mqls_last_month

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k not in ("sales", "months")}
        data["since"] = None if self.since is None else self.since.isoformat()
        data["sales"] = self.sales.to_json()
        data["sources"] = [{**asdict(s), "rate": s.rate} for s in self.sources]
        data["lead_velocity_rate"] = self.lead_velocity_rate
        data["months"] = self.months.to_json()
        return data


def funnel(session: Session, now: datetime, since: datetime | None = None) -> Funnel:
    """The funnel of the leads created since `since` (all leads when None), as of `now`."""
    now = utc(now)
    ids = select(Lead.id).where(Lead.created_at >= utc(since)).scalar_subquery() if since else None
    at_stage = _counts(session, select(Lead.stage, func.count()).where(among(Lead.id, ids)))
    total = sum(at_stage.values())
    tallied = tally(session, ids)
    sales = handoff(session, ids, since, tallied)
    reached = _reached(sales, total)
    stages: list[Stage] = []
    before: int | None = None
    for stage in FUNNEL:
        conversion = reached[stage] / before if before else None
        stages.append(Stage(stage, at_stage.get(stage, 0), reached[stage], conversion))
        before = reached[stage]
    median, p90 = _days_to_mql(session, ids)
    this_month, last_month = _month_starts(now)
    mqls_this_month, mqls_last_month = _mqls_between(session, ids, last_month, this_month, now)
    sla_waiting, sla_overdue = _unanswered(session, ids, now)
    return Funnel(
        since=since,
        leads=total,
        stages=tuple(stages),
        returned=_returned(session, ids),
        days_to_mql_median=median,
        days_to_mql_p90=p90,
        mqls_this_month=mqls_this_month,
        mqls_last_month=mqls_last_month,
        sla_waiting=sla_waiting,
        sla_overdue=sla_overdue,
        sales=sales,
        months=months(session, ids, tallied),
    )


def _counts(session: Session, query: Select[Any, int]) -> dict[str, int]:
    column = query.selected_columns[0]
    return {str(k or ""): int(v) for k, v in session.execute(query.group_by(column))}


def _reached(sales: Handoff, total: int) -> dict[str, int]:
    """Leads that reached each stage or one after it (by their transitions and stage now):
    the handoff's columns by source, summed. A lead has one source, so each counts once."""
    columns = {"mql": "mqls", "sql": "sql", "opportunity": "opportunity", "customer": "customers"}
    summed = {stage: sum(getattr(g, c) for g in sales.by_source) for stage, c in columns.items()}
    return {FUNNEL[0]: total, **summed}


def _returned(session: Session, ids: Any) -> int:
    """Leads sales returned at least once (kept per lead: `nurture.store.funnel_firsts`)."""
    query = select(func.count()).where(
        FunnelFirst.returned.is_(True), among(FunnelFirst.lead_id, ids)
    )
    return int(session.scalar(query) or 0)


def _days_to_mql(session: Session, ids: Any) -> tuple[float | None, float | None]:
    """The median and p90 of the days from each lead's creation to its first MQL.

    The leads are counted, then only the one to three at the ranks those need
    are read (ranked by their wait in SQL), not a row per MQL.
    """
    first = (
        select(MqlRecord.lead_id, func.min(MqlRecord.at).label("at"))
        .where(among(MqlRecord.lead_id, ids))
        .group_by(MqlRecord.lead_id)
        .subquery()
    )
    pairs = (
        select(Lead.created_at.label("created"), first.c.at)
        .join(first, first.c.lead_id == Lead.id)
        .subquery()
    )
    n = int(session.scalar(select(func.count()).select_from(pairs)) or 0)
    if not n:
        return None, None
    p90 = _p90_index(n)
    wanted = sorted({(n - 1) // 2, n // 2, p90})
    if session.get_bind().dialect.name == "sqlite":  # times as text: days as a number
        waited = func.julianday(pairs.c.at) - func.julianday(pairs.c.created)
    else:
        waited = pairs.c.at - pairs.c.created
    ranked = select(
        pairs.c.created, pairs.c.at, (func.row_number().over(order_by=waited) - 1).label("i")
    ).subquery()
    days = {
        int(i): max(0.0, (utc(at) - utc(created)).total_seconds() / 86400)
        for created, at, i in session.execute(select(ranked).where(ranked.c.i.in_(wanted)))
    }
    middle = days[n // 2] if n % 2 else (days[n // 2 - 1] + days[n // 2]) / 2
    return middle, days[p90]


def _p90_index(n: int) -> int:
    """The rank (from 0) of the p90 of `n` sorted values."""
    return min(n - 1, round(0.9 * (n - 1)))


def _month_starts(now: datetime) -> tuple[datetime, datetime]:
    this = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = (
        this.replace(year=this.year - 1, month=12)
        if this.month == 1
        else this.replace(month=this.month - 1)
    )
    return this, last


def _mqls_between(
    session: Session, ids: Any, last: datetime, this: datetime, now: datetime
) -> tuple[int, int]:
    """Leads that became MQLs this month (up to `now`) and last month, in one query."""

    def leads(start: datetime, end: datetime) -> Any:
        between = and_(MqlRecord.at >= start, MqlRecord.at < end)
        return func.count(distinct(case((between, MqlRecord.lead_id))))

    query = select(leads(this, now), leads(last, this)).where(
        among(MqlRecord.lead_id, ids), MqlRecord.at >= last, MqlRecord.at < now
    )
    this_month, last_month = session.execute(query).one()
    return int(this_month or 0), int(last_month or 0)


def _unanswered(session: Session, ids: Any, now: datetime) -> tuple[int, int]:
    """MQLs with an SLA that sales neither accepted nor returned, and the lead still at MQL:
    within their deadline, and past it."""
    query = (
        select(
            func.sum(case((MqlRecord.sla_due_at >= now, 1), else_=0)),
            func.sum(case((MqlRecord.sla_due_at < now, 1), else_=0)),
        )
        .select_from(MqlRecord)
        .join(Lead, Lead.id == MqlRecord.lead_id)
        .where(
            among(MqlRecord.lead_id, ids),
            MqlRecord.sla_due_at.is_not(None),
            MqlRecord.accepted_at.is_(None),
            MqlRecord.returned_at.is_(None),
            Lead.stage == "mql",
        )
    )
    waiting, overdue = session.execute(query).one()
    return int(waiting or 0), int(overdue or 0)


# ---------------------------------------------------------------- one campaign


@dataclass(frozen=True, slots=True)
class Version:
    """One version of a campaign: where its enrollments stand and why they left."""

    version: int
    deployed_at: datetime
    states: Mapping[str, int]
    exits: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Step:
    """One send step of one version: touches by status, and each engagement once per touch."""

    version: int
    step: str
    kind: str
    template: str
    touches: Mapping[str, int]
    engaged: Mapping[str, int]

    @property
    def sent(self) -> int:
        return self.touches.get("sent", 0)

    def rate(self, event: str) -> float | None:
        return self.engaged.get(event, 0) / self.sent if self.sent else None


@dataclass(frozen=True, slots=True)
class CampaignReport:
    """What `nurture report campaign NAME` prints."""

    name: str
    versions: tuple[Version, ...]
    steps: tuple[Step, ...]
    splits: tuple[SplitResult, ...] = ()
    """Each `split`'s arms, compared (`split_report`)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": [
                {**asdict(v), "deployed_at": v.deployed_at.isoformat()} for v in self.versions
            ],
            "steps": [
                {**asdict(s), "rates": {e: s.rate(e) for e in ENGAGEMENT}} for s in self.steps
            ],
            "splits": [split.to_json() for split in self.splits],
        }


class UnknownCampaign(LookupError):
    """Raised when no campaign has the name; `known` lists the names there are."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = tuple(known)


def campaign_report(session: Session, name: str) -> CampaignReport:
    """Enrollments per version, touches per step and A/B results of the campaign `name`."""
    found = session.scalar(select(Campaign).where(Campaign.name == name))
    if found is None:
        raise UnknownCampaign(
            name, list(session.scalars(select(Campaign.name).order_by(Campaign.name)))
        )
    versions = list(
        session.scalars(
            select(CampaignVersion)
            .where(CampaignVersion.campaign_id == found.id)
            .order_by(CampaignVersion.version)
        )
    )
    return CampaignReport(
        name,
        tuple(_version(session, v) for v in versions),
        tuple(step for v in versions for step in _steps(session, v)),
        tuple(split for v in versions for split in split_results(session, v)),
    )


def _version(session: Session, version: CampaignVersion) -> Version:
    mine = Enrollment.campaign_version_id == version.id
    states = _counts(session, select(Enrollment.state, func.count()).where(mine))
    exits = _counts(
        session,
        select(Enrollment.exit_reason, func.count()).where(mine, Enrollment.state == "exited"),
    )
    return Version(version.version, version.deployed_at, states, exits)


def _steps(session: Session, version: CampaignVersion) -> Iterable[Step]:
    touches = (
        select(Delivery.step_id, Delivery.status, func.count())
        .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
        .where(Enrollment.campaign_version_id == version.id)
        .group_by(Delivery.step_id, Delivery.status)
    )
    engaged = (
        select(Delivery.step_id, Event.type, func.count(distinct(Event.delivery_id)))
        .join(Delivery, Delivery.id == Event.delivery_id)
        .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
        .where(Enrollment.campaign_version_id == version.id, Event.type.in_(ENGAGEMENT))
        .group_by(Delivery.step_id, Event.type)
    )
    by_step: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
    for step, status, count in session.execute(touches):
        by_step.setdefault(step, ({}, {}))[0][status] = int(count)
    for step, kind, count in session.execute(engaged):
        by_step.setdefault(step, ({}, {}))[1][kind] = int(count)
    nodes = StepGraph.from_json(version.graph).nodes
    for step in sorted(by_step, key=_step_order):
        node = nodes.get(step)
        kind = node.kind if node is not None else "notify"  # `notify:<template>` keys
        template = node.params.get("template") if node is not None else step.partition(":")[2]
        touched, engaged_counts = by_step[step]
        yield Step(version.version, step, kind, str(template or ""), touched, engaged_counts)


def _step_order(step: str) -> tuple[int, str]:
    """`n2` before `n10`: node ids in source order."""
    digits = step[1:]
    return (int(digits), step) if step.startswith("n") and digits.isdigit() else (1 << 30, step)
