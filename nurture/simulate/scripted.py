"""One scripted lead through the simulator: what `nurture test` runs.

The same loop as `nurture simulate` (`run.Simulation`): the real `decide`,
scores, MQL rule, triggers and the sales desk on the virtual clock. Only the
lead differs: it arrives at the start of day 0, does what its test says at
the moment it says (`on day 2 opens "welcome/cxo"`) instead of drawing its
reactions, and every touch, tag, exit and MQL is written down as its path.
At the end of each day an expectation looks at, the lead's tags, stage and
scores are noted (`Probe`).
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
from nurture.engine import DeliveryKey, EmitMql, Event, Exit, NotifySales, Send, Tag, Untag
from nurture.engine.calendar import lead_zone
from nurture.engine.state import DONE, with_stage
from nurture.engine.triggers import Returned, Sweep
from nurture.handoff.route import Choice
from nurture.simulate.graphs import ANY, STAGE
from nurture.simulate.handoff import SalesDesk, _Mql
from nurture.simulate.leads import Profile
from nurture.simulate.model import Enrollment, Lead, Settings
from nurture.simulate.report import LeadTotals, StepCounts
from nurture.simulate.run import EVENT, Simulation

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
    """What happened to the scripted lead."""

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


class _Desk(SalesDesk):
    """The sales desk, noting whom routing first gives the lead to (reassignments are the SLA's)."""

    def __init__(self, routing: Any, settings: Settings, path: Path, trace: Any) -> None:
        super().__init__(routing, settings, trace)
        self.path = path

    def _give(self, mql: _Mql, choice: Choice, now: datetime, cause: str) -> None:
        self.path.owners.append((now, choice.owner))
        super()._give(mql, choice, now, cause)

    def _accept(self, mql: _Mql, now: datetime) -> None:
        if self.path.accepted is None and mql.held_by is not None:
            self.path.accepted = (now, mql.held_by)
        super()._accept(mql, now)

    def _expire(self, mql: _Mql, now: datetime) -> None:
        self.path.missed += 1
        super()._expire(mql, now)


class ScriptedRun(Simulation):
    """Runs one lead (`profile`) doing `actions`, for `days`, noting the days in `probe_days`."""

    def __init__(
        self,
        program: CompiledProgram,
        settings: Settings,
        profile: Profile,
        actions: Sequence[Action],
        probe_days: Sequence[int],
    ) -> None:
        self.path = Path(settings.start)
        super().__init__(program, settings, [profile], trace=self._sales)
        self.behaviour = _NoReactions()  # type: ignore[assignment]
        if self.desk is not None:
            self.desk = _Desk(self.desk.routing, settings, self.path, self._sales)
        self.profile, self.actions, self.probe_days = profile, actions, sorted(set(probe_days))
        self.deliveries: list[_Delivery] = []
        self.lead: Lead | None = None
        self.mql_from = 0
        """Where in the path the present MQL's steps start (a return starts them again)."""

    def play(self) -> Path:
        """Run the lead to the end; its path, probes, MQL day and owner."""
        self._paused(self._one)
        return self.path

    def _one(self) -> LeadTotals:
        lead = self.lead = self._arrive(self.profile, self.start)
        for action in self.actions:
            at = self.start + action.day * DAY + timedelta(minutes=action.minute)
            if at <= self.end:
                self._push(at, EVENT, lead, (action, None))
        for day in self.probe_days:
            at = self.start + (day + 1) * DAY - timedelta(microseconds=1)
            self._push(min(at, self.end), EVENT, lead, (day, None))
        self._live()
        self.path.final = self._probe(lead, -1, self.end)
        if isinstance(self.desk, _Desk):
            self.desk.play(self.end)
        return LeadTotals()

    # ---------------------------------------------------------------- the loop's hooks

    def _arrivals(self) -> Iterator[tuple[datetime, Profile]]:
        yield self.start, self.profile

    def _event(
        self,
        lead: Lead,
        event: Any,
        counts: StepCounts | None,
        channel: str = "email",
        *,
        now: datetime,
    ) -> None:
        if isinstance(event, int):
            self.path.probes[event] = self._probe(lead, event, now)
        elif isinstance(event, Action) and event.kind == "sets":
            self._sets(lead, event, now)
        elif isinstance(event, Action) and event.kind == "returned":
            self._returned(lead, event, now)
        elif isinstance(event, Action):
            real = self._resolve(event, now)
            if real is not None:
                self._note(now, "event", what=_words(event))
                super()._event(lead, real[0], real[1], now=now)
        else:
            super()._event(lead, event, counts, channel, now=now)  # type: ignore[arg-type]

    def _sets(self, lead: Lead, action: Action, now: datetime) -> None:
        """A profile change (an import, the CRM): fit, segments and exit rules look again."""
        fields = {**lead.view.fields, **dict(action.fields)}
        lead.view = dataclasses.replace(lead.view, fields=fields)
        self._note(now, "event", what=_words(action))
        self.scores.changed(lead, ANY)
        self._check_mql(lead, now)
        self._triggers(lead, Sweep(now), now, self.on_segment)
        self._nudge(lead, ANY, now)

    def _returned(self, lead: Lead, action: Action, now: datetime) -> None:
        """Sales returned the lead (stage `returned`): it may qualify again on new behaviour."""
        lead.view = with_stage(lead.view, "returned")
        lead.mql_at = None
        self._note(now, "event", what=_words(action))
        self.mql_from = len(self.path.steps)
        self.scores.changed(lead, STAGE)
        runs = [
            r
            for r in self.campaigns.values()
            if any(t.get("on") == "returned" for t in r.graph.triggers)
        ]
        self._triggers(lead, Returned(now), now, [*runs, *self.on_segment])
        self._nudge(lead, STAGE, now)

    def _resolve(self, action: Action, now: datetime) -> tuple[Event, StepCounts] | None:
        if action.message is None:
            return Event(action.name or action.kind, now), StepCounts()
        for d in reversed(self.deliveries):
            if action.message in (d.send.template, d.send.name):
                counts = self.campaigns[d.campaign].counts.steps.get(d.node) or StepCounts()
                return Event(action.kind, now, d.key, d.send.name, action.link), counts
        self._note(now, "missed", what=f"{_words(action)}: nothing of that name sent yet")
        return None

    def _send(self, enrollment: Enrollment, send: Send, now: datetime) -> None:
        key = DeliveryKey(enrollment.id, send.node_id, send.iteration)
        self.deliveries.append(_Delivery(key, send, enrollment.run.name, send.node_id))
        self._note(now, "send", enrollment.run.name, send.channel, send.template)
        super()._send(enrollment, send, now)

    def _perform(
        self, enrollment: Enrollment, actions: Sequence[Any], now: datetime, resumed: str | None
    ) -> None:
        name = enrollment.run.name
        for action in actions:
            if isinstance(action, Tag) and action.tag not in enrollment.lead.view.tags:
                self._note(now, "tag", name, what=action.tag)
            elif isinstance(action, Untag) and action.tag in enrollment.lead.view.tags:
                self._note(now, "untag", name, what=action.tag)
            elif isinstance(action, Exit):
                self._note(now, "exit", name, what=action.reason)
            elif isinstance(action, NotifySales):
                self._note(now, "notify", name, what=action.template)
            elif isinstance(action, EmitMql) and enrollment.lead.mql_at is None:
                self._note(now, "mql", name, what=action.cause)
        super()._perform(enrollment, actions, now, resumed)

    def _check_mql(self, lead: Lead, now: datetime) -> None:
        before = lead.mql_at
        super()._check_mql(lead, now)
        if before is None and lead.mql_at is not None and not self._noted_mql():
            self._note(now, "mql", what="scoring rule")

    def _finish(self, enrollment: Enrollment, now: datetime) -> None:
        if enrollment.state.state == DONE:
            self._note(now, "done", enrollment.run.name)
        super()._finish(enrollment, now)

    def _sales(self, line: str) -> None:
        self.path.steps.append(Step(self.end, -1, "sales", what=line))

    # ---------------------------------------------------------------- notes

    def _noted_mql(self) -> bool:
        return any(s.kind == "mql" for s in self.path.steps[self.mql_from :])

    def _day(self, at: datetime) -> int:
        return (at - self.start) // DAY

    def _note(
        self,
        at: datetime,
        kind: str,
        campaign: str | None = None,
        channel: str | None = None,
        what: str | None = None,
    ) -> None:
        local = f"{at.astimezone(lead_zone(self.lead.view)) if self.lead else at:%H:%M}"
        self.path.steps.append(Step(at, self._day(at), kind, campaign, channel, what, local))
        if kind == "mql" and self.path.mql_day is None:
            self.path.mql_day = self._day(at)

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
