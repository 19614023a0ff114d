"""The numbers a dry run reports: counters kept while it runs, and the report built from them.

Counters are per step and per campaign (never per lead and step, or per lead
and campaign), so memory grows with leads only through the leads themselves
(and the run's list of days to MQL, one number per MQL). Each campaign's entry
in the report carries its reach (enrolled, completed, exits, in flight, sent,
deferred), its caps and most touches in 7 days, and the MQLs attributed to it
(`mql`: `count` and `by_cause`): the lead's first MQL counts for the campaign
whose `mql` step made it, or, when the scoring file's `mql when` rule made it,
for every campaign the lead was enrolled in at that moment; a lead that meets
the rule outside any campaign counts in the run's `mql` only. `report` turns them into
one JSON-ready dict; the text output renders that same dict, so both outputs
always show the same numbers.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dsl.draw import node_lines
from dsl.graph import StepGraph


@dataclass(slots=True)
class StepCounts:
    """What happened at one step, over all leads."""

    entered: int = 0
    """Times a lead reached the step (a branch or deferred send resumed is not counted again)."""
    sent: int = 0
    deferred: int = 0
    """Touches held back at least once by the send window or a cap."""
    deferred_by: Counter[str] = field(default_factory=Counter)
    """Deferred touches by the first reason: `window`, `cap`, `global cap`."""
    opened: int = 0
    clicked: int = 0
    replied: int = 0
    suppressed: int = 0
    exits: int = 0
    """Enrollments that left the campaign here (an `exit` step, or the exit rule meanwhile)."""
    in_flight: int = 0
    """Enrollments parked here (or on their way here from a wait) when the run ended."""

    def add(self, other: StepCounts) -> None:
        """Add another share of the leads' counts at this step (`simulate --jobs`)."""
        self.entered += other.entered
        self.sent += other.sent
        self.deferred += other.deferred
        self.deferred_by.update(other.deferred_by)
        self.opened += other.opened
        self.clicked += other.clicked
        self.replied += other.replied
        self.suppressed += other.suppressed
        self.exits += other.exits
        self.in_flight += other.in_flight


@dataclass(slots=True)
class CampaignCounts:
    """One campaign's totals and its steps' counters."""

    graph: StepGraph
    entry: bool
    """Whether synthetic leads enter it directly when they are created."""
    steps: dict[str, StepCounts]
    enrolled: int = 0
    completed: int = 0
    exits: Counter[str] = field(default_factory=Counter)
    max_touches_7d: int = 0
    """The most touches from this campaign any lead got in any 7 days."""
    mql_by: Counter[str] = field(default_factory=Counter)
    """Leads' MQLs attributed to this campaign, by cause: its own `mql` steps, and the
    scoring rule while the lead was enrolled here (so one MQL may count in several)."""
    took: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Times a lead went from a step with several ways out (branch, split, repeat) to the
    next one, by (step id, next step id)."""

    @classmethod
    def of(cls, graph: StepGraph, entry: bool) -> CampaignCounts:
        return cls(graph, entry, {node_id: StepCounts() for node_id in graph.nodes})

    def add(self, other: CampaignCounts) -> None:
        """Add another share of the leads' counts for this campaign (`simulate --jobs`)."""
        for node_id, counts in other.steps.items():
            self.steps[node_id].add(counts)
        self.enrolled += other.enrolled
        self.completed += other.completed
        self.exits.update(other.exits)
        self.max_touches_7d = max(self.max_touches_7d, other.max_touches_7d)
        self.mql_by.update(other.mql_by)
        self.took.update(other.took)

    def __getstate__(self) -> tuple[Any, ...]:
        """Pickled without its graph (a share's counters going back to the main process)."""
        return (
            None,
            self.entry,
            self.steps,
            self.enrolled,
            self.completed,
            self.exits,
            self.max_touches_7d,
            self.mql_by,
            self.took,
        )

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        (
            self.graph,
            self.entry,
            self.steps,
            self.enrolled,
            self.completed,
            self.exits,
            self.max_touches_7d,
            self.mql_by,
            self.took,
        ) = state


@dataclass(slots=True)
class LeadTotals:
    """Per-lead facts summed as the leads are read at the end."""

    leads: int = 0
    touches: int = 0
    max_touches: int = 0
    in_flight_leads: int = 0
    in_flight: int = 0
    waiting: int = 0
    stuck: list[dict[str, Any]] = field(default_factory=list)

    def add(self, touches: int) -> None:
        self.leads += 1
        self.touches += touches
        self.max_touches = max(self.max_touches, touches)

    def add_share(self, other: LeadTotals) -> None:
        """Add the totals of the leads that follow these (`simulate --jobs`)."""
        self.leads += other.leads
        self.touches += other.touches
        self.max_touches = max(self.max_touches, other.max_touches)
        self.in_flight_leads += other.in_flight_leads
        self.in_flight += other.in_flight
        self.waiting += other.waiting
        self.stuck.extend(other.stuck)


def report(
    settings: dict[str, Any],
    campaigns: Sequence[CampaignCounts],
    totals: LeadTotals,
    mql_days: Sequence[float],
    mql_causes: Counter[str],
    max_touches_7d: int,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The report as one JSON-ready dict (see `nurture simulate --help` for the keys)."""
    exits: Counter[str] = Counter()
    for counts in campaigns:
        exits.update(counts.exits)
    leads = totals.leads
    return {
        **settings,
        "campaigns": [_campaign(c) for c in campaigns],
        "steps": [_step(c, node_id, s) for c in campaigns for node_id, s in c.steps.items()],
        "touches_per_lead": {
            "mean": round(totals.touches / leads, 3) if leads else 0.0,
            "max": totals.max_touches,
            "total": totals.touches,
        },
        "max_touches_7d": max_touches_7d,
        "caps": _caps(campaigns),
        "mql": {
            "count": len(mql_days),
            "rate": round(len(mql_days) / leads, 4) if leads else 0.0,
            "days_median": _round(statistics.median(mql_days)) if mql_days else None,
            "days_p90": _round(percentile(mql_days, 90)) if mql_days else None,
            "by_cause": dict(sorted(mql_causes.items())),
        },
        "exits": dict(sorted(exits.items())),
        "completed": sum(c.completed for c in campaigns),
        "in_flight": {
            "leads": totals.in_flight_leads,
            "enrollments": totals.in_flight,
            "waiting": totals.waiting,
            "stuck": len(totals.stuck),
            "stuck_examples": totals.stuck[:10],
        },
        **extra,
    }


def _campaign(counts: CampaignCounts) -> dict[str, Any]:
    g = counts.graph
    return {
        "name": g.name,
        "kind": g.kind,
        "path": g.path,
        "line": g.line,
        "entry": counts.entry,
        "enrolled": counts.enrolled,
        "completed": counts.completed,
        "exits": dict(sorted(counts.exits.items())),
        "in_flight": sum(s.in_flight for s in counts.steps.values()),
        "sent": sum(s.sent for s in counts.steps.values()),
        "deferred": sum(s.deferred for s in counts.steps.values()),
        "suppressed": sum(s.suppressed for s in counts.steps.values()),
        "caps": [cap_words(c) for c in g.caps],
        "max_touches_7d": counts.max_touches_7d,
        "mql": {
            "count": counts.mql_by.total(),
            "by_cause": dict(sorted(counts.mql_by.items())),
        },
    }


def _step(counts: CampaignCounts, node_id: str, s: StepCounts) -> dict[str, Any]:
    graph = counts.graph
    node = graph.nodes[node_id]
    took = {e.target: counts.took[(node_id, e.target)] for e in node.edges}
    return {
        "campaign": graph.name,
        "id": node_id,
        "kind": node.kind,
        "line": node.line,
        "description": describe(graph, node_id),
        "entered": s.entered,
        "sent": s.sent,
        "deferred": s.deferred,
        "deferred_by": dict(sorted(s.deferred_by.items())),
        "opened": s.opened,
        "clicked": s.clicked,
        "replied": s.replied,
        "suppressed": s.suppressed,
        "exits": s.exits,
        "in_flight": s.in_flight,
        "took": took if len(node.edges) > 1 else {},
    }


def describe(graph: StepGraph, node_id: str) -> str:
    """A step in a few words: `email welcome/cxo`, `wait 1 week`, `opened within 3 days?`."""
    node = graph.nodes[node_id]
    if node.kind == "send":
        p = node.params
        words = f"{p.get('channel')} {p.get('template')}"
        return f"{words} as {p['name']}" if p.get("name") else words
    return node_lines(node)[0] if node.kind != "branch" else " ".join(node_lines(node))


def cap_words(cap: dict[str, Any]) -> str:
    return f"{cap.get('count')} per {cap.get('period')}"


def _caps(campaigns: Iterable[CampaignCounts]) -> dict[str, list[str]]:
    """The caps of each campaign leads entered, for `max_touches_7d` to be read against."""
    return {
        c.graph.name: [cap_words(x) for x in c.graph.caps]
        for c in campaigns
        if c.graph.caps and c.enrolled
    }


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile: the smallest value with `pct`% of values at or below it."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _round(value: float) -> float:
    return round(value, 2)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
