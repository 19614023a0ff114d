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
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dsl.graph import CompiledProgram
from nurture.engine import (
    Candidate,
    Deferred,
    DeliveryKey,
    EmitMql,
    EnrollInto,
    EnrollmentState,
    Event,
    EventOccurred,
    Exit,
    LeadCreated,
    LeadView,
    NotifySales,
    PastEnrollment,
    Score,
    Send,
    SentTouch,
    Suppressed,
    Sweep,
    Tag,
    TagAdded,
    Untag,
    decide,
    may_enter,
    should_enroll,
)
from nurture.engine.state import (
    DONE,
    ENDED,
    WAITING,
    positional_builder,
    with_closed,
    with_score_delta,
    with_stage,
    with_suppressed,
    with_tags,
)
from nurture.engine.triggers import NOT_ACTIVITY, Happening, Segments
from nurture.engine.values import as_instant
from nurture.simulate.agenda import Agenda
from nurture.simulate.behaviour import BOUNCED_HARD, UNSUBSCRIBED, Behaviour
from nurture.simulate.drift import DriftWatch
from nurture.simulate.graphs import (
    ANY,
    CUSTOM,
    ENGAGE,
    SCORES,
    STAGE,
    TAGS,
    custom_events,
)
from nurture.simulate.handoff import SalesDesk, Trace
from nurture.simulate.leads import Profile
from nurture.simulate.model import Campaign, Enrollment, Lead, Progress, Settings
from nurture.simulate.report import CampaignCounts, LeadTotals, StepCounts, iso, report
from nurture.simulate.scores import ScoreKeeper
from nurture.simulate.trace import StepTrace

WEEK = timedelta(days=7)
ARRIVAL_SPREAD = 86400
"""Leads arrive at random moments of the first day (seconds)."""
WAKE, NUDGE, EVENT, SWEEP, DRIFT = 0, 1, 2, 3, 4
PROGRESS_EVERY = 256
"""Leads between two progress reports."""
_new_touch = positional_builder(SentTouch)
_new_key = positional_builder(DeliveryKey)


@dataclass(slots=True)
class _Tally:
    decisions: int = 0
    steps: int = 0
    max_touches_7d: int = 0
    mql_days: list[float] = field(default_factory=list)
    mql_causes: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    notifications: Counter[str] = field(default_factory=Counter)

    def add(self, other: _Tally) -> None:
        """Add another share of the leads' tally (`shards`), as if they had run here."""
        self.decisions += other.decisions
        self.steps += other.steps
        self.max_touches_7d = max(self.max_touches_7d, other.max_touches_7d)
        self.mql_days.extend(other.mql_days)
        self.mql_causes.update(other.mql_causes)
        self.events.update(other.events)
        self.notifications.update(other.notifications)


@dataclass(slots=True)
class Part:
    """What one share of the leads leaves behind (`Simulation.part`): counters, and its MQLs
    noted for the sales desk, which plays them with every other share's (`shards`)."""

    tally: _Tally
    campaigns: dict[str, CampaignCounts]
    totals: LeadTotals
    noted: list[Any]


class Simulation:
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
        self.tally = _Tally()
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
        self.spans = [timedelta(seconds=s) for s in sorted(spans)]

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

    def _push(self, at: datetime, kind: int, subject: Any, payload: Any = None) -> int:
        return self.agenda.push(at, kind, subject, payload)

    def _schedule(self, enrollment: Enrollment, at: datetime) -> None:
        enrollment.due = at
        if at <= self.end:
            enrollment.ticket = self.agenda.push(at, WAKE, enrollment)

    # ---------------------------------------------------------------- leads and enrollments

    def _arrive(self, profile: Profile, at: datetime) -> Lead:
        fields = {**profile.fields, "created_at": iso(at)}
        view = LeadView(profile.id, fields, profile.tags, profile.stage, profile.suppressed)
        lead = Lead(view, at)
        self._check_mql(lead, at)
        for run in self.entry:
            self._enroll(lead, run, at)
        for tag in sorted(view.tags):  # a new lead's tags are new: `enroll when tagged` fires
            self._triggers(lead, TagAdded(tag, at), at, self.on_tag.get(tag, ()))
        self._triggers(lead, LeadCreated(at), at, self.on_segment)
        if self.spans:
            # A profile's `last_activity_at` counts as the core counts it (`last_activity`):
            # a lead quiet since long before it arrives is swept at once.
            recorded = as_instant(view.field("last_activity_at"))
            if recorded is not None and recorded < at:
                lead.last_activity = recorded
            first = max(at, lead.last_activity + self.spans[0])
            if first <= self.end:
                self._push(first, SWEEP, lead)
        return lead

    def _enroll(self, lead: Lead, run: Campaign, at: datetime) -> None:
        if lead.view.suppressed or not may_enter(run.graph, self._past(lead), at):
            return
        self.next_id += 1
        enrollment = Enrollment(
            self.next_id, lead, run, EnrollmentState.start(self.next_id, run.graph, at)
        )
        lead.active.append(enrollment)
        run.counts.enrolled += 1
        self._schedule(enrollment, at)

    def _past(self, lead: Lead) -> list[PastEnrollment]:
        return lead.past + [e.entered for e in lead.active]

    def _triggers(
        self, lead: Lead, happening: Happening, now: datetime, runs: Sequence[Campaign]
    ) -> None:
        """Enroll the lead where one of `runs`' triggers fires on `happening`."""
        if not runs or lead.view.suppressed:
            return
        candidate = None
        for run in runs:
            if any(e.run is run for e in lead.active):
                continue
            if run.graph.reenter_after is None and any(p.campaign == run.name for p in lead.past):
                continue
            if candidate is None:
                self.scores.refresh(lead, now)
                candidate = Candidate(lead.view, lead.events, self._past(lead))
            if should_enroll(run.graph, candidate, happening, now, self.segments):
                self._enroll(lead, run, now)
                candidate = None

    def _nudge(
        self,
        lead: Lead,
        mask: int,
        now: datetime,
        but: Enrollment | None = None,
        delivery: DeliveryKey | None = None,
    ) -> None:
        """Wake, at `now`, the lead's enrollments whose exit rule or waiting branch may care.

        A suppression (`mask` ANY) wakes every enrollment: each must exit.
        """
        for enrollment in lead.active:
            if enrollment is but or enrollment.nudged or enrollment.stuck:
                continue
            run, waiting = enrollment.run, enrollment.state.waiting_for
            cares = run.exit_mask | (run.branch_masks.get(waiting.node, 0) if waiting else 0)
            cares = ANY if mask == ANY else cares
            hit = cares & mask
            if not hit or (
                hit == ENGAGE and delivery is not None and delivery.enrollment != enrollment.id
            ):
                continue
            enrollment.nudged = True
            self._push(now, NUDGE, enrollment)

    # ---------------------------------------------------------------- decisions

    def _decide(self, enrollment: Enrollment, now: datetime) -> None:
        lead, run = enrollment.lead, enrollment.run
        if enrollment.state.cursor in run.score_cursors:
            self.scores.refresh(lead, now)
        trace = self.trace
        trace.clear()
        decision = decide(
            enrollment.state,
            lead.view,
            lead.events,
            run.graph,
            now,
            lead.history,
            self.settings.global_cap,
            observer=trace,
        )
        self.tally.decisions += 1
        ran = trace.visits
        resumed = enrollment.resume
        if ran:
            self.tally.steps += len(ran)
            steps = run.counts.steps
            for node_id in ran[1:] if ran[0] == resumed else ran:
                counts = steps.get(node_id)
                if counts is not None:  # None only for a step missing from the graph
                    counts.entered += 1
            forks = run.forks
            if forks:
                took = run.counts.took
                for i in range(len(ran) - 1):
                    if ran[i] in forks:
                        took[ran[i], ran[i + 1]] += 1
        state = enrollment.state = decision.state
        if decision.actions:
            self._perform(enrollment, decision.actions, now, resumed)
        if ran:
            parked = state.state == WAITING and ran[-1] == state.cursor
            enrollment.resume = state.cursor if parked else None
        if state.state in ENDED:
            self._finish(enrollment, now)
        elif state.next_run_at is None or state.next_run_at <= now:
            enrollment.stuck = True
        elif state.next_run_at != enrollment.due:
            self._schedule(enrollment, state.next_run_at)

    def _perform(
        self, enrollment: Enrollment, actions: Sequence[Any], now: datetime, resumed: str | None
    ) -> None:
        lead, run = enrollment.lead, enrollment.run
        steps, changed = run.counts.steps, 0
        for action in actions:
            kind = type(action)
            if kind is Send:
                self._send(enrollment, action, now)
            elif kind is Deferred:
                if action.node_id != resumed:
                    steps[action.node_id].deferred += 1
                    steps[action.node_id].deferred_by[action.why] += 1
            elif kind is Tag:
                if action.tag not in lead.view.tags:
                    lead.view = with_tags(lead.view, lead.view.tags | {action.tag})
                    changed |= TAGS
                    runs = [*self.on_tag.get(action.tag, ()), *self.on_segment]
                    self._triggers(lead, TagAdded(action.tag, now), now, runs)
            elif kind is Untag:
                if action.tag in lead.view.tags:
                    lead.view = with_tags(lead.view, lead.view.tags - {action.tag})
                    changed |= TAGS
            elif kind is Score:
                lead.view = with_score_delta(lead.view, lead.view.score_delta + action.delta)
                changed |= SCORES
            elif kind is EmitMql:
                self._become_mql(lead, now, action.cause, run)
                changed |= STAGE
            elif kind is EnrollInto:
                target = self.campaigns.get(action.campaign)
                if target is not None:
                    self._enroll(lead, target, now)
            elif kind is NotifySales:
                self.tally.notifications[action.template] += 1
            elif kind is Suppressed:
                steps[action.node_id].suppressed += 1
            elif kind is Exit:
                run.counts.exits[action.reason] += 1
                visits = self.trace.visits
                where = steps.get(visits[-1] if visits else enrollment.state.cursor)
                if where is not None:
                    where.exits += 1
        self.scores.changed(lead, changed)
        if changed & (TAGS | SCORES):
            self._check_mql(lead, now)
        if changed:
            # A score, stage or tag change may bring the lead into a segment: production's
            # sweep (`sweep_segments`) would find it there, so check segment triggers now.
            self._triggers(lead, Sweep(now), now, self.on_segment)
            if self.drift.active:  # a tag, score or stage time does not change may open one
                self._plan_drift(lead, now)
            self._nudge(lead, changed, now, but=enrollment)

    def _send(self, enrollment: Enrollment, send: Send, now: datetime) -> None:
        lead, run = enrollment.lead, enrollment.run
        counts = run.counts.steps[send.node_id]
        counts.sent += 1
        lead.touches += 1
        history = lead.history
        history.append(_new_touch(now, run.name))
        cutoff, week = now - self.keep, now - WEEK
        old = 0
        while history[old].at <= cutoff:
            old += 1
        if old:
            del history[:old]
        total = mine = 0
        for touch in reversed(history):
            if touch.at <= week:
                break
            total += 1
            mine += touch.campaign == run.name
        self.tally.max_touches_7d = max(self.tally.max_touches_7d, total)
        run.counts.max_touches_7d = max(run.counts.max_touches_7d, mine)
        key = _new_key(enrollment.id, send.node_id, send.iteration)
        traits = run.traits[send.node_id]
        for event in self.behaviour.react(send, key, now, traits):
            if event.at <= self.end:
                self._push(event.at, EVENT, lead, (event, counts, traits.channel))

    def _finish(self, enrollment: Enrollment, now: datetime) -> None:
        lead, state = enrollment.lead, enrollment.state
        lead.active.remove(enrollment)
        lead.past.append(PastEnrollment(enrollment.run.name, state.entered_at, state.ended_at))
        if state.state == DONE:
            enrollment.run.counts.completed += 1
        if enrollment.run.name in self.drift.reentry:  # the lead may enter it again, some day
            self._plan_drift(lead, now)

    # ---------------------------------------------------------------- events, scores, MQL

    def _event(
        self,
        lead: Lead,
        event: Event,
        counts: StepCounts,
        channel: str = "email",
        *,
        now: datetime,
    ) -> None:
        lead.events.append(event)
        name = event.name
        self.tally.events[name] += 1
        mask = CUSTOM
        if event.delivery is not None:
            mask = ENGAGE
            if name == "opened":
                counts.opened += 1
            elif name == "clicked":
                counts.clicked += 1
            elif name == "replied":
                counts.replied += 1
        if name not in NOT_ACTIVITY:
            lead.last_activity = now
        if name == UNSUBSCRIBED and not lead.view.suppressed:
            lead.view = with_suppressed(lead.view, UNSUBSCRIBED)
            mask = ANY
            self.scores.changed(lead, mask)
        elif name == BOUNCED_HARD and channel not in lead.view.closed:
            # that channel alone is closed for the lead; its campaigns go on
            closed = {**lead.view.closed, channel: f"bounced_hard on {channel}"}
            lead.view = with_closed(lead.view, closed)
        self._check_mql(lead, now)
        runs = [*self.on_event.get(name, ()), *self.on_segment]
        self._triggers(lead, EventOccurred(event), now, runs)
        if self.drift.active and (at := self.drift.after_event(lead, event, now, self.end)):
            self._wake_drift(lead, at)
        self._nudge(lead, mask if mask == ANY else mask | SCORES, now, delivery=event.delivery)

    def _check_mql(self, lead: Lead, now: datetime) -> None:
        if self.scores.mql_due(lead, now):
            self._become_mql(lead, now, "scoring rule")
            if self.drift.active:
                self._plan_drift(lead, now)
            self._nudge(lead, STAGE, now)

    def _become_mql(
        self, lead: Lead, now: datetime, cause: str, step_of: Campaign | None = None
    ) -> None:
        """Make the lead an MQL; the first time, count it, for the run and for campaigns.

        An `mql` step's MQL (`step_of` its campaign) is that campaign's; the scoring
        rule's belongs to every campaign the lead is enrolled in at that moment.
        """
        lead.view = with_stage(lead.view, "mql")
        self.scores.changed(lead, STAGE)
        if lead.mql_at is None:
            lead.mql_at = now
            self.tally.mql_days.append((now - lead.created).total_seconds() / 86400)
            self.tally.mql_causes[cause] += 1
            runs = [step_of] if step_of is not None else [e.run for e in lead.active]
            for run in dict.fromkeys(runs):
                run.counts.mql_by[cause] += 1
            if self.desk is not None:
                self.scores.refresh(lead, now)
                owner = lead.view.field("account_owner")
                self.desk.note(lead.view, lead.events, now, cause, str(owner) if owner else None)

    def _sweep(self, lead: Lead, now: datetime) -> None:
        """Check `inactive for` (and segment) triggers once the lead has been quiet long enough."""
        quiet = lead.last_activity + self.spans[0]
        if quiet <= now:
            self._triggers(lead, Sweep(now), now, self.on_sweep)
        later = [lead.last_activity + s for s in self.spans if lead.last_activity + s > now]
        following = min([*later, now + self.spans[0]])
        if following <= self.end:
            self._push(following, SWEEP, lead)

    # ---------------------------------------------------------------- segments by time alone

    def _plan_drift(self, lead: Lead, now: datetime) -> None:
        """Wake the lead when time alone may next bring it into a segment (`drift`)."""
        at = self.drift.next_moment(lead, now)
        if at is not None:
            self._wake_drift(lead, at)

    def _wake_drift(self, lead: Lead, at: datetime) -> None:
        """Wake the lead at `at` unless it is already woken earlier (that wake-up plans on)."""
        if at <= self.end and (lead.drift is None or at < lead.drift):
            lead.drift = at
            self._push(at, DRIFT, lead)

    def _drift(self, lead: Lead, now: datetime) -> None:
        """Check segment triggers, as production's periodic sweep would, then plan the next."""
        lead.drift = None
        self._triggers(lead, Sweep(now), now, self.on_segment)
        self._plan_drift(lead, now)

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
