"""A/B results: each `split` of a campaign version, arm by arm, with a significance test.

Which leads are in which arm is what the engine decided: `engine.loops.pick_arm`
is a pure function of the lead, the campaign and the split, so a lead's arm is
worked out again here rather than stored. A lead counts for a split once it
has reached it: it has a touch at, or its enrollment stands at, a step that
every way to lies through the split (the split's arms and what follows them
inside the same branch; a step after an `if` whose other branch skips the
split does not count).

Per arm: leads, sends (touches sent), unique opens and clicks (leads who
opened / clicked a message of the arm) and MQLs (leads that became an MQL
after they reached the split). Each of the three rates (opened, clicked, MQL
per lead) is compared across arms with a test from `scipy.stats`: Fisher's
exact test for two arms (exact at the small counts B2B campaigns have), the
chi-square test of independence for more. A winner is called only when the
test says p < `ALPHA`, every arm has at least `MIN_LEADS` leads and, for the
chi-square test, every cell expects at least 5; otherwise the verdict says
why not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dsl.graph import Node, StepGraph
from nurture.engine.loops import pick_arm
from nurture.models import CampaignVersion, Delivery, Enrollment, Event, MqlRecord

ALPHA = 0.05
"""The significance level a difference must reach for a winner to be called."""
MIN_LEADS = 30
"""Leads every arm needs before a winner is called, however small p is."""
METRICS = ("opened", "clicked", "mql")


@dataclass(frozen=True, slots=True)
class Arm:
    label: str
    share: float
    leads: int
    sends: int
    opened: int
    """Leads who opened a message of this arm (each lead once)."""
    clicked: int
    mqls: int

    def count(self, metric: str) -> int:
        return {"opened": self.opened, "clicked": self.clicked, "mql": self.mqls}[metric]

    def rate(self, metric: str) -> float | None:
        return self.count(metric) / self.leads if self.leads else None


@dataclass(frozen=True, slots=True)
class Comparison:
    """One rate compared across the arms."""

    metric: str
    test: str
    p_value: float | None
    difference: float | None
    """Two arms: the second's rate less the first's; more: the best less the worst."""
    winner: str | None
    verdict: str


@dataclass(frozen=True, slots=True)
class SplitResult:
    version: int
    step: str
    line: int
    arms: tuple[Arm, ...]
    comparisons: tuple[Comparison, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "step": self.step,
            "line": self.line,
            "arms": [
                {
                    "label": a.label,
                    "share": a.share,
                    "leads": a.leads,
                    "sends": a.sends,
                    "opened": a.opened,
                    "clicked": a.clicked,
                    "mqls": a.mqls,
                    "rates": {m: a.rate(m) for m in METRICS},
                }
                for a in self.arms
            ],
            "comparisons": [
                {
                    "metric": c.metric,
                    "test": c.test,
                    "p_value": c.p_value,
                    "difference": c.difference,
                    "winner": c.winner,
                    "verdict": c.verdict,
                }
                for c in self.comparisons
            ],
        }


def split_results(session: Session, version: CampaignVersion) -> list[SplitResult]:
    """Every split of one version, in source order."""
    graph = StepGraph.from_json(version.graph)
    splits = [n for n in graph.nodes.values() if n.kind == "split" and n.edges]
    return [_split(session, version, graph, node) for node in sorted(splits, key=_order)]


def _order(node: Node) -> tuple[int, str]:
    return (node.line, node.id)


# ---------------------------------------------------------------- who is in which arm


def _reach(graph: StepGraph, start: str, avoid: str) -> set[str]:
    """The steps reachable from `start` without passing `avoid`."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        node_id = todo.pop()
        if node_id in seen or node_id == avoid or node_id not in graph.nodes:
            continue
        seen.add(node_id)
        todo.extend(edge.target for edge in graph.nodes[node_id].edges)
    return seen


def _beyond(graph: StepGraph, split: Node) -> tuple[set[str], list[set[str]]]:
    """The steps every way to which lies through `split`, and each arm's own steps."""
    around = _reach(graph, graph.entry, split.id)
    after = {t for e in split.edges for t in _reach(graph, e.target, split.id)} - around
    reaches = [_reach(graph, e.target, split.id) for e in split.edges]
    own = []
    for i, reach in enumerate(reaches):
        others = set().union(*(r for j, r in enumerate(reaches) if j != i))
        own.append(reach - others)
    return after, [o & after for o in own]


@dataclass(slots=True)
class _Lead:
    lead_id: int
    arm: int
    reached_at: datetime | None
    opened: bool = False
    clicked: bool = False
    mql: bool = False


def _split(
    session: Session, version: CampaignVersion, graph: StepGraph, split: Node
) -> SplitResult:
    after, own = _beyond(graph, split)
    steps = sorted(after)
    mine = Enrollment.campaign_version_id == version.id
    leads: dict[int, _Lead] = {}
    sends = [0] * len(split.edges)
    arm_of_step = {step: i for i, steps_of in enumerate(own) for step in steps_of}

    def arm_of(lead_id: int) -> int:
        edge = pick_arm(split.edges, lead_id, graph.name, split.id)
        return split.edges.index(edge)

    touches = session.execute(
        select(Delivery.enrollment_id, Enrollment.lead_id, Delivery.step_id)
        .add_columns(Delivery.status, Delivery.created_at)
        .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
        .where(mine, Delivery.step_id.in_(steps))
    )
    for enrollment_id, lead_id, step, status, created in touches:
        seen = leads.get(enrollment_id)
        if seen is None:
            seen = leads[enrollment_id] = _Lead(lead_id, arm_of(lead_id), created)
        elif seen.reached_at is None or created < seen.reached_at:
            seen.reached_at = created
        if status == "sent" and step in arm_of_step:
            sends[arm_of_step[step]] += 1
    standing = session.execute(
        select(Enrollment.id, Enrollment.lead_id, Enrollment.entered_at).where(
            mine, Enrollment.cursor.in_(steps)
        )
    )
    for enrollment_id, lead_id, entered in standing:
        if enrollment_id not in leads:
            leads[enrollment_id] = _Lead(lead_id, arm_of(lead_id), entered)
    _engagement(session, mine, arm_of_step, leads)
    _mqls(session, leads)
    arms = tuple(
        _arm(edge, [lead for lead in leads.values() if lead.arm == i], sends[i])
        for i, edge in enumerate(split.edges)
    )
    return SplitResult(version.version, split.id, split.line, arms, compare(arms))


def _engagement(
    session: Session, mine: Any, arm_steps: Mapping[str, int], leads: Mapping[int, _Lead]
) -> None:
    """Mark the leads who opened or clicked a message of their arm."""
    if not arm_steps:
        return
    rows = session.execute(
        select(Delivery.enrollment_id, Event.type)
        .join(Delivery, Delivery.id == Event.delivery_id)
        .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
        .where(mine, Delivery.step_id.in_(sorted(arm_steps)), Event.type.in_(("opened", "clicked")))
        .distinct()
    )
    for enrollment_id, kind in rows:
        lead = leads.get(enrollment_id)
        if lead is not None:
            lead.opened = lead.opened or kind == "opened"
            lead.clicked = lead.clicked or kind == "clicked"


def _mqls(session: Session, leads: Mapping[int, _Lead]) -> None:
    """Mark the leads that became an MQL once they had reached the split."""
    by_lead: dict[int, list[_Lead]] = {}
    for lead in leads.values():
        by_lead.setdefault(lead.lead_id, []).append(lead)
    ids = sorted(by_lead)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for lead_id, at in session.execute(
            select(MqlRecord.lead_id, MqlRecord.at).where(MqlRecord.lead_id.in_(chunk))
        ):
            for lead in by_lead[lead_id]:
                lead.mql = lead.mql or lead.reached_at is None or at >= lead.reached_at


def _arm(edge: Any, leads: Sequence[_Lead], sends: int) -> Arm:
    return Arm(
        str(edge.label or edge.target),
        float(edge.weight or 0.0),
        len(leads),
        sends,
        sum(lead.opened for lead in leads),
        sum(lead.clicked for lead in leads),
        sum(lead.mql for lead in leads),
    )


# ---------------------------------------------------------------- the tests


def compare(arms: Sequence[Arm]) -> tuple[Comparison, ...]:
    """Each rate across the arms: the test, its p-value, the difference and the verdict."""
    return tuple(compare_metric(arms, metric) for metric in METRICS)


def compare_metric(arms: Sequence[Arm], metric: str) -> Comparison:
    table = [(a.count(metric), a.leads - a.count(metric)) for a in arms]
    name = "Fisher's exact test" if len(arms) == 2 else "chi-square test"
    rates = [a.rate(metric) for a in arms]
    if len(arms) < 2 or any(r is None for r in rates):
        empty = ", ".join(f'"{a.label}"' for a in arms if not a.leads) or "a second arm"
        verdict = f"not enough data to call a winner: no leads yet in {empty}"
        return Comparison(metric, name, None, None, None, verdict)
    known = [r for r in rates if r is not None]
    difference = known[1] - known[0] if len(known) == 2 else max(known) - min(known)
    p_value = p_of(table)
    if len(arms) > 2 and _sparse(table):
        verdict = (
            "not enough data to call a winner: the chi-square test needs 5 leads expected "
            "in every arm either way"
        )
        return Comparison(metric, name, p_value, difference, None, verdict)
    few = [a for a in arms if a.leads < MIN_LEADS]
    if few:
        names = ", ".join(f'"{a.label}" {a.leads}' for a in few)
        verdict = (
            f"not enough data to call a winner: a winner needs {MIN_LEADS} leads in every "
            f"arm (now {names})"
        )
        return Comparison(metric, name, p_value, difference, None, verdict)
    if p_value >= ALPHA:
        verdict = f"no winner: the difference may be chance (p = {p_value:.3g} ≥ {ALPHA})"
        return Comparison(metric, name, p_value, difference, None, verdict)
    best = max(arms, key=lambda a: a.rate(metric) or 0.0)
    verdict = f'"{best.label}" wins (p = {p_value:.3g} < {ALPHA})'
    return Comparison(metric, name, p_value, difference, best.label, verdict)


def _sparse(table: Sequence[tuple[int, int]]) -> bool:
    """Whether a cell of the table expects fewer than 5 (the chi-square approximation's rule)."""
    grand = sum(a + b for a, b in table)
    columns = (sum(a for a, _ in table), sum(b for _, b in table))
    return any((a + b) * c / grand < 5 for a, b in table for c in columns) if grand else True


def p_of(table: Iterable[tuple[int, int]]) -> float:
    """The two-sided p-value that the arms' rates differ: Fisher's exact test for a 2×2
    table, the chi-square test of independence (no continuity correction) for more rows.
    A table with no successes, or no failures, at all shows no difference: p = 1."""
    from scipy.stats import chi2_contingency, fisher_exact

    rows = [list(row) for row in table]
    if not sum(r[0] for r in rows) or not sum(r[1] for r in rows):
        return 1.0
    if len(rows) == 2:
        return float(fisher_exact(rows, alternative="two-sided").pvalue)
    kept = [r for r in rows if sum(r)]
    if len(kept) < 2:
        return 1.0
    return float(chi2_contingency(kept, correction=False).pvalue)
