"""What a dry run is made of: its settings, and the loop's records of leads,
enrollments and campaigns.

The records are plain mutable classes with `__slots__`: the loop keeps one per
lead and per running enrollment while the lead runs, so they are small, and the
core only ever sees the frozen views they hold (`LeadView`, `EnrollmentState`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dsl.graph import StepGraph
from nurture.engine import Cap, EnrollmentState, Event, LeadView, PastEnrollment, SentTouch
from nurture.engine.predicates import Predicate
from nurture.simulate.behaviour import Rates
from nurture.simulate.graphs import SCORES, depends_on, send_traits
from nurture.simulate.report import CampaignCounts

START = datetime(2026, 1, 5, tzinfo=UTC)
"""Monday 5 January 2026, 00:00 UTC: every run starts here, so results never depend on today."""
MAX_DAYS = 3650
"""Ten years: longer than any campaign's lifetime, far from the calendar's end."""

Progress = Callable[[float], None]
"""Told the share of leads simulated, from 0 to 1, now and then."""


@dataclass(frozen=True, slots=True)
class Settings:
    """One dry run's parameters."""

    leads: int = 1000
    """How many leads arrive (at most; a profile file may hold fewer)."""
    days: int = 90
    seed: int = 0
    rates: Rates = field(default_factory=Rates)
    entry: tuple[str, ...] = ()
    """Campaigns new leads enter directly; empty: every campaign."""
    start: datetime = START
    global_cap: Cap | None = None
    """A cap over every campaign's touches, as the production settings may set one."""
    accept_rate: float = 0.7
    """The share of MQLs a salesperson accepts (the others run out their SLA)."""
    accept_after: tuple[timedelta, timedelta] = (timedelta(hours=6), timedelta(hours=48))
    """How long a salesperson who accepts takes, drawn evenly between the two."""

    def problems(self) -> list[str]:
        """What is wrong with these settings, in words for the command line."""
        found = [] if self.leads >= 1 else [f"--leads must be at least 1 (got {self.leads})"]
        if not 1 <= self.days <= MAX_DAYS:
            found.append(f"--days must be between 1 and {MAX_DAYS} (got {self.days})")
        if not 0 <= self.accept_rate <= 1:
            found.append(f"--accept-rate must be between 0 and 1 (got {self.accept_rate:g})")
        low, high = self.accept_after
        if low < timedelta(0) or high < low:
            found.append("--accept-after must be a range from a shorter to a longer time")
        return found + self.rates.problems()


@dataclass(slots=True)
class Tally:
    """What the run counts besides the campaigns' counters: decisions, steps, MQLs, events."""

    decisions: int = 0
    steps: int = 0
    max_touches_7d: int = 0
    mql_days: list[float] = field(default_factory=list)
    mql_causes: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    notifications: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        """Add another share of the leads' tally (`shards`), as if they had run here."""
        self.decisions += other.decisions
        self.steps += other.steps
        self.max_touches_7d = max(self.max_touches_7d, other.max_touches_7d)
        self.mql_days.extend(other.mql_days)
        self.mql_causes.update(other.mql_causes)
        self.events.update(other.events)
        self.notifications.update(other.notifications)


class Lead:
    """One simulated lead: its view for the core, its events, sends and enrollments."""

    __slots__ = (
        "active",
        "created",
        "drift",
        "events",
        "history",
        "last_activity",
        "mql_at",
        "past",
        "scored",
        "scores_until",
        "touches",
        "view",
    )

    def __init__(self, view: LeadView, created: datetime) -> None:
        self.view = view
        self.created = created
        self.events: list[Event] = []
        self.history: list[SentTouch] = []
        """Sends of the last `keep` period, oldest first: what caps and the 7-day count need."""
        self.past: list[PastEnrollment] = []
        self.active: list[Enrollment] = []
        self.touches = 0
        self.mql_at: datetime | None = None
        self.scored = -1
        """How many events the current scores include (-1: not computed yet)."""
        self.scores_until = created
        self.last_activity = created
        self.drift: datetime | None = None
        """When its one pending segment wake-up is due (`run._plan_drift`); None: none."""


class Enrollment:
    """One lead in one campaign, and what the loop knows about its wake-ups."""

    __slots__ = (
        "due",
        "entered",
        "id",
        "lead",
        "nudged",
        "resume",
        "run",
        "state",
        "stuck",
        "ticket",
    )

    def __init__(self, ident: int, lead: Lead, run: Campaign, state: EnrollmentState) -> None:
        self.id, self.lead, self.run, self.state = ident, lead, run, state
        self.entered = PastEnrollment(run.name, state.entered_at)
        """This enrollment as reentry rules see it while it runs."""
        self.due: datetime | None = None
        self.ticket = -1
        """The sequence number of the one heap entry that may wake it on time."""
        self.resume: str | None = None
        """The step it is parked on after running it (a waiting branch, a deferred send)."""
        self.nudged = False
        self.stuck = False


class Campaign:
    """A campaign as the loop runs it: the graph, counters, and precomputed facts."""

    def __init__(self, graph: StepGraph, entry: bool) -> None:
        self.graph = graph
        self.name = graph.name
        self.counts = CampaignCounts.of(graph, entry)
        self.traits = send_traits(graph)
        self.exit_mask = depends_on(graph.exit_when)
        self.branch_masks = {
            n.id: depends_on(n.params.get("cond"))
            for n in graph.nodes.values()
            if n.kind == "branch"
        }
        reading = {n for n, mask in self.branch_masks.items() if mask & SCORES}
        every = self.exit_mask & SCORES
        self.score_cursors = frozenset(graph.nodes) if every else _reaching(graph, reading)
        """Steps a decision starting there may test scores from (by the exit rule, or a branch
        it reaches before a wait parks it): only then must the scores be brought to its
        moment first; elsewhere `decide` reads nothing of them."""
        self.gate: Predicate | None = None
        """For a campaign enrolled by segments alone, what a lead must be for one to hold
        (`run.Simulation._segment_gate`); None: no such shortcut."""
        self.forks = frozenset(n.id for n in graph.nodes.values() if len(n.edges) > 1)
        """Steps with several ways out: which one each lead took is counted."""


def _reaching(graph: StepGraph, targets: set[str]) -> frozenset[str]:
    """The steps from which a walk reaches one of `targets` before a `wait` parks it."""
    found = set()
    for start in graph.nodes if targets else ():
        seen, todo = set(), [start]
        while todo:
            node_id = todo.pop()
            if node_id in targets:
                found.add(start)
                break
            node = graph.nodes.get(node_id)
            if node_id in seen or node is None:
                continue
            seen.add(node_id)
            if node_id != start and node.kind == "wait" and node.params.get("seconds"):
                continue  # a wait of some time parks the walk here (`steps.wait`)
            todo.extend(edge.target for edge in node.edges)
    return frozenset(found)
