"""The dry run: leads through compiled campaigns on a virtual clock, with the real core.

Nothing a lead does changes what happens to another (caps, scores, triggers
and segments are all per lead), so leads run one after another, each from
its arrival to the end of the run, and are then counted and let go: memory
stays flat however many leads there are, and one lead's handful of objects
stay in the CPU's caches while it runs. A lead's wake-ups sit in an agenda
(`agenda`), ordered by (time, sequence number), so a seed always gives the
same run: an enrollment due (`decide` at its `next_run_at`), an enrollment
nudged early (an event it waits for arrived, or a change that its exit rule
looks at), the lead's event (an open, a click, a custom event), its
inactivity sweep, and its segment check when time alone may change a segment
(below). Leads arrive spread over the first day and enter the entry
campaigns directly (that arrival stands in for `enroll when lead created`,
so `--campaign X` starts X alone); from there every trigger, `enroll` step
and exit rule applies as it would in production:

- `enroll when tagged` fires on a tag the lead did not have (a new lead's
  own tags included, as an import's are), `enroll when event` on the event,
  `enroll when segment` on every happening of the lead and every change a
  step makes to its tags, score or stage, and `enroll when inactive for`
  when the lead has been quiet that long (checked for each lead exactly
  then, instead of sweeping everybody daily);
- a lead may also drift into a segment with nothing happening to it, where
  production's periodic sweep (`sweep_segments`) finds it: so segment
  triggers are also checked exactly when time alone may make one hold (a
  DRIFT wake-up, one pending per lead, `Lead.drift`, at the moment `drift`
  works out: an event leaving a `within` span, interest decaying, `reenter
  after` passing); a program whose segment triggers time cannot make true
  schedules none;
- a change wakes only the enrollments it can matter to: an event the branch
  it waits on looks at, a tag or stage its exit rule looks at (`graphs`);
- scores are kept current (`scores`), and the scoring file's `mql when` rule
  is checked on every event and change, so a lead's days-to-MQL (from its
  arrival) is recorded once, whichever comes first: the rule or an `mql` step;
  that MQL also counts for campaigns: an `mql` step's for its campaign, the
  rule's for every campaign the lead is enrolled in at that moment.
- with a routing among the files, that first MQL is also noted for the sales
  desk (`handoff`: which routing rules hold for the lead then), which plays
  the routing and the SLA clock over every MQL in time order once the last
  lead has run, since the desk is shared by all leads.

While it runs, a lead keeps its events (the core needs them), its sends of
the longest cap period, its enrollments and the moment of its pending DRIFT
wake-up; counters are per step and per campaign, never per lead and step or
per lead and campaign.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dsl.graph import CompiledProgram, Json
from nurture.engine.predicates import Predicate, compile_condition
from nurture.engine.state import ENDED
from nurture.engine.triggers import Segments
from nurture.simulate.agenda import EVENT, NUDGE, SWEEP, WAKE, Agenda
from nurture.simulate.behaviour import Behaviour
from nurture.simulate.decisions import WEEK, Decisions
from nurture.simulate.drift import DriftWatch
from nurture.simulate.graphs import STAGE, TAGS, custom_events, relaxed
from nurture.simulate.handoff import SalesDesk, Trace
from nurture.simulate.leads import Profile
from nurture.simulate.model import Campaign, Enrollment, Lead, Progress, Settings, Tally
from nurture.simulate.report import CampaignCounts, LeadTotals, iso, report
from nurture.simulate.scores import ScoreKeeper
from nurture.simulate.trace import StepTrace

ARRIVAL_SPREAD = 86400
"""Leads arrive at random moments of the first day (seconds)."""
PROGRESS_EVERY = 256
"""Leads between two progress reports."""


@dataclass(slots=True)
class Part:
    """What one share of the leads leaves behind (`Simulation.part`): counters, and its MQLs
    noted for the sales desk, which plays them with every other share's (`shards`)."""

    tally: Tally
    campaigns: dict[str, CampaignCounts]
    totals: LeadTotals
    noted: list[Any]


class Simulation(Decisions):
    """Runs `settings.leads` leads from `profiles` through `program` for `settings.days`.

    `profiles` may also be a share of the leads (`simulate --jobs`): those from
    the `first`-th on. Each lead draws its arrival and its reactions from its
    own random stream, seeded by the run's seed and its place among the leads,
    so a lead does the same thing whichever share it runs in.
    """

    def __init__(
        self,
        program: CompiledProgram,
        settings: Settings,
        profiles: Iterable[Profile],
        progress: Progress | None = None,
        trace: Trace | None = None,
        first: int = 0,
    ) -> None:
        problems = settings.problems()
        if problems:
            raise ValueError("; ".join(problems))
        unknown = [name for name in settings.entry if name not in program.campaigns]
        if unknown:
            raise ValueError(f"no campaign named {', '.join(map(repr, unknown))}")
        self.program, self.settings, self.progress = program, settings, progress
        self.profiles, self.first = iter(profiles), first
        entry = set(settings.entry or program.campaigns)
        self.campaigns = {n: Campaign(g, n in entry) for n, g in program.campaigns.items()}
        self.entry = [c for c in self.campaigns.values() if c.counts.entry]
        self._index_triggers()
        self.scores = ScoreKeeper(program.scoring)
        self.segments = Segments(program.segments)
        self.drift = DriftWatch(program, self.on_segment, self.scores)
        self.keep = max([WEEK, *(timedelta(seconds=float(c["seconds"])) for c in self._caps())])
        self.start = settings.start
        self.end = settings.start + timedelta(days=settings.days)
        self.behaviour = Behaviour(settings.rates, random.Random(), custom_events(program))
        self.agenda = Agenda(self.start)
        self.trace = StepTrace()
        """One trace for every decision: `_decide` reads it before the next one starts."""
        self.next_id = 0
        self.tally = Tally()
        routing = program.routing
        self.desk = (
            SalesDesk(routing, settings, trace) if routing and routing.get("rules") else None
        )
        """The sales desk MQLs go to, when the files have a routing (`handoff`)."""

    def _caps(self) -> Iterator[dict[str, Any]]:
        for graph in self.program.campaigns.values():
            yield from graph.caps
        if self.settings.global_cap is not None:
            yield {"seconds": self.settings.global_cap.period.total_seconds()}

    def _index_triggers(self) -> None:
        self.on_tag: dict[str, list[Campaign]] = {}
        self.on_event: dict[str, list[Campaign]] = {}
        self.on_segment: list[Campaign] = []
        self.on_sweep: list[Campaign] = []
        spans: set[float] = set()
        for run in self.campaigns.values():
            for trigger in run.graph.triggers:
                on = trigger.get("on")
                if on == "tagged":
                    self.on_tag.setdefault(str(trigger.get("tag")), []).append(run)
                elif on == "event":
                    self.on_event.setdefault(str(trigger.get("name")), []).append(run)
                elif on == "segment":
                    self.on_segment.append(run)
                elif on == "inactive":
                    spans.add(float(trigger.get("seconds") or 0))
                    self.on_sweep.append(run)
        self.on_sweep = list(dict.fromkeys([*self.on_sweep, *self.on_segment]))
        for run in self.on_segment:
            run.gate = self._segment_gate(run.graph.triggers)
        self.spans = [timedelta(seconds=s) for s in sorted(spans)]

    def _segment_gate(self, triggers: Sequence[Json]) -> Predicate | None:
        """For a campaign enrolled by segments alone: its segments' tag and stage parts.

        Where that is false for a lead, no trigger of the campaign can fire
        (`graphs.relaxed`), so `_triggers` asks no more; most leads lack a
        segment's tag, and a tag test is a fraction of a segment's (scores,
        events). None: a campaign with other triggers too.
        """
        if any(t.get("on") != "segment" for t in triggers):
            return None
        segments = self.program.segments
        either = [segments.get(str(t.get("segment"))) for t in triggers]
        kept = [relaxed(cond, TAGS | STAGE) for cond in either if cond is not None]
        return compile_condition({"op": "or", "args": kept})

    # ---------------------------------------------------------------- the loop

    def run(self) -> dict[str, Any]:
        """Run to the end and return the report.

        The loop allocates many small objects (states, actions, events) and
        makes no garbage cycles (`_close` breaks the one a lead has):
        reference counting frees them all. The cyclic collector, triggered
        by that allocation rate, would only scan them for nothing (12-20% of
        the run at 20,000 leads), so it is paused for the run and restored
        afterwards.
        """
        return self._report(self._paused(self._loop))

    def part(self) -> Part:
        """Run this share of the leads; what it counted, for `shards` to add up."""
        totals = self._paused(self._loop)
        noted = [] if self.desk is None else self.desk.noted
        counts = {name: run.counts for name, run in self.campaigns.items()}
        return Part(self.tally, counts, totals, noted)

    def add(self, part: Part) -> None:
        """Count another share's leads here (the campaigns' counters, the tally, the MQLs)."""
        self.tally.add(part.tally)
        for name, counts in part.campaigns.items():
            self.campaigns[name].counts.add(counts)
        if self.desk is not None:
            self.desk.noted.extend(part.noted)

    def report(self, totals: LeadTotals) -> dict[str, Any]:
        """The report of what was counted here and `add`ed (the sales desk plays now)."""
        return self._report(totals)

    @staticmethod
    def _paused(loop: Callable[[], LeadTotals]) -> LeadTotals:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return loop()
        finally:
            if enabled:
                gc.enable()

    def _loop(self) -> LeadTotals:
        totals, count = LeadTotals(), self.settings.leads
        for done, (at, profile) in enumerate(self._arrivals(), start=1):
            lead = self._arrive(profile, at)
            self._live()
            self._close(lead, totals)
            if self.progress is not None and done % PROGRESS_EVERY == 0:
                self.progress(done / count)
        if self.progress is not None:
            self.progress(1.0)
        return totals

    def _live(self) -> None:
        """Play the agenda, which holds one lead's wake-ups, to the end of the run."""
        agenda = self.agenda
        heap, after_end = agenda.heap, agenda.key(self.end + timedelta(microseconds=1))
        while heap and heap[0] < after_end:
            key, (at, kind, subject, payload) = agenda.pop()
            if kind == WAKE:
                if subject.ticket == key and subject.state.state not in ENDED:
                    self._decide(subject, at)
            elif kind == EVENT:
                self._event(subject, *payload, now=at)
            elif kind == NUDGE:
                subject.nudged = False
                if subject.state.state not in ENDED and not subject.stuck:
                    self._decide(subject, at)
            elif kind == SWEEP:
                self._sweep(subject, at)
            elif subject.drift == at:  # DRIFT, and not one an earlier wake-up replaced
                self._drift(subject, at)
        agenda.clear()

    def _arrivals(self) -> Iterator[tuple[datetime, Profile]]:
        """Each lead with its arrival: one at a random second of each equal slice of the day.

        Jittered slices keep arrivals in order without drawing and sorting them
        all first, so a million leads cost no more memory up front than ten.
        The lead's own random stream (`Behaviour.rng`, reseeded here for it)
        draws its arrival, then its reactions while it runs.
        """
        rng, seed = self.behaviour.rng, self.settings.seed
        count = self.settings.leads
        for index, profile in zip(range(self.first, count), self.profiles, strict=False):
            rng.seed(f"behaviour:{seed}:{index}")
            second = int((index + rng.random()) * ARRIVAL_SPREAD / count)
            yield self.start + timedelta(seconds=second), profile

    # ---------------------------------------------------------------- the report

    def _close(self, lead: Lead, totals: LeadTotals) -> None:
        """Count a lead whose run is over, then let it go.

        Its enrollments point back at it: clearing `active` breaks that cycle,
        so reference counting frees the lead now, with the collector paused.
        """
        totals.add(lead.touches)
        if lead.active:
            totals.in_flight_leads += 1
        for enrollment in lead.active:
            self._count_in_flight(enrollment, totals)
        lead.active.clear()

    def _report(self, totals: LeadTotals) -> dict[str, Any]:
        tally, s = self.tally, self.settings
        settings = {
            "leads": totals.leads,
            "days": s.days,
            "seed": s.seed,
            "start": iso(self.start),
            "end": iso(self.end),
            "rates": s.rates.to_json(),
            "entry_campaigns": [run.name for run in self.entry],
        }
        extra = {
            "events": dict(sorted(tally.events.items())),
            "notifications": dict(sorted(tally.notifications.items())),
            "engine": {"decisions": tally.decisions, "steps": tally.steps},
            "handoff": None if self.desk is None else self.desk.play(self.end),
        }
        runs = [run.counts for run in self.campaigns.values()]
        return report(
            settings,
            runs,
            totals,
            tally.mql_days,
            tally.mql_causes,
            tally.max_touches_7d,
            extra,
        )

    def _count_in_flight(self, enrollment: Enrollment, totals: LeadTotals) -> None:
        state = enrollment.state
        totals.in_flight += 1
        counts = enrollment.run.counts.steps.get(state.cursor)
        if counts is not None:
            counts.in_flight += 1
        if enrollment.stuck:
            totals.stuck.append(
                {
                    "lead": str(enrollment.lead.view.id),
                    "campaign": enrollment.run.name,
                    "step": state.cursor,
                    "state": state.state,
                    "next_run_at": None if state.next_run_at is None else iso(state.next_run_at),
                }
            )
        else:
            totals.waiting += 1


def simulate(
    program: CompiledProgram,
    settings: Settings,
    profiles: Iterable[Profile],
    progress: Progress | None = None,
    trace: Trace | None = None,
) -> dict[str, Any]:
    """Run a dry run and return its report (see `Simulation`)."""
    return Simulation(program, settings, profiles, progress, trace).run()
