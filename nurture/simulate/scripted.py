"""A test's scripted leads through the simulator: what `nurture test` runs.

The same loop as `nurture simulate` (`run.Simulation`): the real `decide`,
scores, MQL rule, triggers and the sales desk on the virtual clock. Only the
leads differ: each arrives at the start of day 0 (or when its test says:
`on day 3 "bo" arrives`), does what its test says at the moment it says
(`on day 2 opens "welcome/cxo"`) instead of drawing its reactions, and every
touch, tag, exit and MQL is written down as its path. At the end of each day
an expectation looks at, the lead's tags, stage and scores are noted
(`Probe`). A test's leads share one agenda (one virtual
clock) and one sales desk, so round robin turns, daily caps and open MQLs
count every lead's MQL, as in production; the simulator proper runs leads
one after another only because nothing there depends on another lead.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dsl.graph import CompiledProgram
from dsl.testfile import Action
from nurture.engine import (
    DeliveryKey,
    EmitMql,
    Event,
    Exit,
    LeadView,
    NotifySales,
    Send,
    Tag,
    Untag,
)
from nurture.engine.calendar import lead_zone
from nurture.engine.state import DONE, with_stage
from nurture.engine.triggers import Returned, Sweep
from nurture.handoff.route import Choice
from nurture.simulate.agenda import EVENT
from nurture.simulate.graphs import ANY, STAGE
from nurture.simulate.handoff import SalesDesk, _Mql
from nurture.simulate.leads import Profile
from nurture.simulate.model import Enrollment, Lead, Settings
from nurture.simulate.report import LeadTotals, StepCounts
from nurture.simulate.run import Simulation

DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Step:
    """One line of the lead's path."""

    at: datetime
    day: int
    kind: str
    """send, tag, untag, mql, notify, exit, done, event, missed, sales."""
    campaign: str | None = None
    channel: str | None = None
    what: str | None = None
    local: str = ""
    """The time of day in the lead's time zone (UTC without one), `HH:MM`."""


@dataclass(frozen=True, slots=True)
class Probe:
    """The lead at the end of a day: tags, stage and scores."""

    day: int
    tags: frozenset[str]
    stage: str
    score: float
    fit: float
    interest: float
    grade: str | None
    fit_grade: str | None


@dataclass(slots=True)
class Path:
    """What happened to one scripted lead."""

    start: datetime
    """Day 0's midnight, UTC."""
    steps: list[Step] = field(default_factory=list)
    probes: dict[int, Probe] = field(default_factory=dict)
    mql_day: int | None = None
    owners: list[tuple[datetime, str | None]] = field(default_factory=list)
    """Whom the sales desk gave the lead to, and when (the first: the routing's pick)."""
    accepted: tuple[datetime, str] | None = None
    missed: int = 0
    """How many SLA deadlines passed unanswered."""
    final: Probe | None = None


@dataclass(frozen=True, slots=True)
class _Delivery:
    lead: Lead
    key: DeliveryKey
    send: Send
    campaign: str
    node: str


class _NoReactions:
    """The lead reacts only as scripted: the random stream is there for the loop alone."""

    def __init__(self) -> None:
        self.rng = random.Random()

    def react(self, *args: Any) -> list[Event]:
        return []


@dataclass(frozen=True, slots=True)
class Script:
    """One lead of a test: its profile, what it does, the days its expectations look at, and
    when it arrives (is created)."""

    profile: Profile
    actions: Sequence[Action]
    probe_days: Sequence[int]
    arrival: datetime


class _Desk(SalesDesk):
    """The shared sales desk, noting in each lead's path whom routing gives it to and why."""

    def __init__(self, routing: Any, settings: Settings, paths: dict[str, Path]) -> None:
        super().__init__(routing, settings, None)
        self.paths = paths

    def _give(self, mql: _Mql, choice: Choice, now: datetime, cause: str) -> None:
        self.paths[mql.lead].owners.append((now, choice.owner))
        super()._give(mql, choice, now, cause)

    def _accept(self, mql: _Mql, now: datetime) -> None:
        path = self.paths[mql.lead]
        if path.accepted is None and mql.held_by is not None:
            path.accepted = (now, mql.held_by)
        super()._accept(mql, now)

    def _expire(self, mql: _Mql, now: datetime) -> None:
        self.paths[mql.lead].missed += 1
        super()._expire(mql, now)

    def _say(self, now: datetime, mql: _Mql, words: str) -> None:
        line = f"{now:%Y-%m-%d %H:%M}  lead {mql.lead}  {words}"
        self.paths[mql.lead].steps.append(Step(self.end, -1, "sales", what=line))


class ScriptedRun(Simulation):
    """Runs a test's leads (`scripts`, ids unique) together for `settings.days`."""

    def __init__(
        self, program: CompiledProgram, settings: Settings, scripts: Sequence[Script]
    ) -> None:
        self.paths = {s.profile.id: Path(settings.start) for s in scripts}
        profiles = [s.profile for s in scripts]
        super().__init__(program, dataclasses.replace(settings, leads=len(scripts)), profiles)
        self.behaviour = _NoReactions()  # type: ignore[assignment]
        if self.desk is not None:
            self.desk = _Desk(self.desk.routing, settings, self.paths)
        self.scripts = scripts
        self.deliveries: list[_Delivery] = []
        self.mql_from: dict[str, int] = {}
        """Where in each lead's path its present MQL's steps start (a return starts them again)."""

    def play(self) -> dict[str, Path]:
        """Run the leads to the end; each one's path, probes, MQL day and owner, by its id."""
        self._paused(self._all)
        return self.paths

    def _all(self) -> LeadTotals:
        self.leads: list[Lead] = []
        for script in self.scripts:
            if script.arrival <= self.start:
                self._enter(script, self.start)
            elif script.arrival <= self.end:  # created then, in time order with the others
                self._push(script.arrival, EVENT, script, (script, None))
        self._live()
        for lead in self.leads:
            self._path(lead).final = self._probe(lead, -1, self.end)
        if isinstance(self.desk, _Desk):
            self.desk.play(self.end)
        return LeadTotals()

    def _enter(self, script: Script, now: datetime) -> None:
        """The lead arrives, and what it will do and when it is looked at are planned."""
        if now > self.start:  # a late arrival opens its path
            zone = lead_zone(LeadView(script.profile.id, script.profile.fields))
            step = Step(
                now, self._day(now), "event", what="arrives", local=f"{now.astimezone(zone):%H:%M}"
            )
            self.paths[script.profile.id].steps.append(step)
        lead = self._arrive(script.profile, now)
        self.leads.append(lead)
        for action in script.actions:
            at = self.start + action.day * DAY + timedelta(minutes=action.minute)
            if now <= at <= self.end:
                self._push(at, EVENT, lead, (action, None))
        for day in sorted(set(script.probe_days)):
            at = self.start + (day + 1) * DAY - timedelta(microseconds=1)
            if now <= at:
                self._push(min(at, self.end), EVENT, lead, (day, None))

    def _path(self, lead: Lead) -> Path:
        return self.paths[str(lead.view.id)]

    # ---------------------------------------------------------------- the loop's hooks

    def _arrivals(self) -> Iterator[tuple[datetime, Profile]]:
        for script in self.scripts:
            yield self.start, script.profile

    def _event(
        self,
        lead: Lead,
        event: Any,
        counts: StepCounts | None,
        channel: str = "email",
        *,
        now: datetime,
    ) -> None:
        if isinstance(event, Script):
            self._enter(event, now)
        elif isinstance(event, int):
            self._path(lead).probes[event] = self._probe(lead, event, now)
        elif isinstance(event, Action) and event.kind == "sets":
            self._sets(lead, event, now)
        elif isinstance(event, Action) and event.kind == "returned":
            self._returned(lead, event, now)
        elif isinstance(event, Action):
            real = self._resolve(lead, event, now)
            if real is not None:
                self._note(lead, now, "event", what=_words(event))
                super()._event(lead, real[0], real[1], now=now)
        else:
            super()._event(lead, event, counts, channel, now=now)  # type: ignore[arg-type]

    def _sets(self, lead: Lead, action: Action, now: datetime) -> None:
        """A profile change (an import, the CRM): fit, segments and exit rules look again."""
        fields = {**lead.view.fields, **dict(action.fields)}
        lead.view = dataclasses.replace(lead.view, fields=fields)
        self._note(lead, now, "event", what=_words(action))
        self.scores.changed(lead, ANY)
        self._check_mql(lead, now)
        self._triggers(lead, Sweep(now), now, self.on_segment)
        self._nudge(lead, ANY, now)

    def _returned(self, lead: Lead, action: Action, now: datetime) -> None:
        """Sales returned the lead (stage `returned`): it may qualify again on new behaviour."""
        lead.view = with_stage(lead.view, "returned")
        lead.mql_at = None
        self._note(lead, now, "event", what=_words(action))
        self.mql_from[str(lead.view.id)] = len(self._path(lead).steps)
        self.scores.changed(lead, STAGE)
        runs = [
            r
            for r in self.campaigns.values()
            if any(t.get("on") == "returned" for t in r.graph.triggers)
        ]
        self._triggers(lead, Returned(now), now, [*runs, *self.on_segment])
        self._nudge(lead, STAGE, now)

    def _resolve(
        self, lead: Lead, action: Action, now: datetime
    ) -> tuple[Event, StepCounts] | None:
        if action.message is None:
            return Event(action.name or action.kind, now), StepCounts()
        for d in reversed(self.deliveries):
            if d.lead is lead and action.message in (d.send.template, d.send.name):
                counts = self.campaigns[d.campaign].counts.steps.get(d.node) or StepCounts()
                return Event(action.kind, now, d.key, d.send.name, action.link), counts
        self._note(lead, now, "missed", what=f"{_words(action)}: nothing of that name sent yet")
        return None

    def _send(self, enrollment: Enrollment, send: Send, now: datetime) -> None:
        key = DeliveryKey(enrollment.id, send.node_id, send.iteration)
        lead = enrollment.lead
        self.deliveries.append(_Delivery(lead, key, send, enrollment.run.name, send.node_id))
        self._note(lead, now, "send", enrollment.run.name, send.channel, send.template)
        super()._send(enrollment, send, now)

    def _perform(
        self, enrollment: Enrollment, actions: Sequence[Any], now: datetime, resumed: str | None
    ) -> None:
        name, lead = enrollment.run.name, enrollment.lead
        for action in actions:
            if isinstance(action, Tag) and action.tag not in lead.view.tags:
                self._note(lead, now, "tag", name, what=action.tag)
            elif isinstance(action, Untag) and action.tag in lead.view.tags:
                self._note(lead, now, "untag", name, what=action.tag)
            elif isinstance(action, Exit):
                self._note(lead, now, "exit", name, what=action.reason)
            elif isinstance(action, NotifySales):
                self._note(lead, now, "notify", name, what=action.template)
            elif isinstance(action, EmitMql) and lead.mql_at is None:
                self._note(lead, now, "mql", name, what=action.cause)
        super()._perform(enrollment, actions, now, resumed)

    def _check_mql(self, lead: Lead, now: datetime) -> None:
        before = lead.mql_at
        super()._check_mql(lead, now)
        if before is None and lead.mql_at is not None and not self._noted_mql(lead):
            self._note(lead, now, "mql", what="scoring rule")

    def _finish(self, enrollment: Enrollment, now: datetime) -> None:
        if enrollment.state.state == DONE:
            self._note(enrollment.lead, now, "done", enrollment.run.name)
        super()._finish(enrollment, now)

    # ---------------------------------------------------------------- notes

    def _noted_mql(self, lead: Lead) -> bool:
        steps = self._path(lead).steps[self.mql_from.get(str(lead.view.id), 0) :]
        return any(s.kind == "mql" for s in steps)

    def _day(self, at: datetime) -> int:
        return (at - self.start) // DAY

    def _note(
        self,
        lead: Lead,
        at: datetime,
        kind: str,
        campaign: str | None = None,
        channel: str | None = None,
        what: str | None = None,
    ) -> None:
        path, local = self._path(lead), f"{at.astimezone(lead_zone(lead.view)):%H:%M}"
        path.steps.append(Step(at, self._day(at), kind, campaign, channel, what, local))
        if kind == "mql" and path.mql_day is None:
            path.mql_day = self._day(at)

    def _probe(self, lead: Lead, day: int, now: datetime) -> Probe:
        self.scores.refresh(lead, now)
        view = lead.view
        s = view.scores
        return Probe(
            day, view.tags, view.stage, view.score, s.fit, s.interest, s.grade, s.fit_grade
        )


def _words(action: Action) -> str:
    if action.kind == "event":
        return f'event "{action.name}"'
    if action.kind == "unsubscribed":
        return "unsubscribes"
    if action.kind == "returned":
        return f'is returned by sales: "{action.name}"'
    if action.kind == "sets":
        return "sets " + ", ".join(f"{k} = {v!r}" for k, v in action.fields)
    link = f' "{action.link}" in' if action.link else ""
    return f"{action.kind}{link} {action.message}"
