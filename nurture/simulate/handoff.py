"""The handoff in a dry run: simulated MQLs routed to sales, and the SLA clock on the virtual clock.

The loop runs one lead at a time from its arrival to the end of the run, but
the sales desk is shared: round robin turns, open MQLs and daily caps depend
on every MQL before. So the loop notes each MQL as it happens (`note`: the
moment, the lead, which routing rules hold for it then, its owner: a few
numbers, like its days to MQL) and `play` runs the desk over all of them in
time order at the end, with the production chooser (`nurture.handoff.route`:
`choose_by`, `after_deadline`), an in-memory desk, and simulated salespeople
who accept a share of their MQLs (`Settings.accept_rate`) after a delay drawn
from `Settings.accept_after`, deterministic from the seed, the lead and the
attempt. The others run out their SLA and move on as the routing says:
reassigned, escalated, reminded, or left where they are when nobody is left.
"""

from __future__ import annotations

import heapq
import random
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from dsl.draw import duration_words
from nurture.engine.state import Event, LeadView
from nurture.handoff.route import Choice, Desk, after_deadline, choose_by, holding
from nurture.simulate.model import Settings

Trace = Callable[[str], None]
"""Told one line for every assignment, acceptance, reassignment and escalation, in time order."""
MQL, ACCEPT, EXPIRE = 0, 1, 2


@dataclass(slots=True)
class _Mql:
    """One MQL as the desk plays it."""

    lead: str
    at: datetime
    holds: tuple[bool, ...]
    owner: str | None
    """The lead's own owner (from its profile), for `assign to owner`."""
    account_owner: str | None
    cause: str
    held_by: str | None = None
    team: str | None = None
    way: str = "team"
    holder_team: str | None = None
    """The team the present owner was drawn from (None: a user, an owner, the escalation)."""
    had: set[str] = field(default_factory=set)
    turn: int = 0
    due: datetime | None = None
    deadline: datetime | None = None
    """The first deadline of the present owner (a reminder moves `due`, not this)."""
    accepted: bool = False


@dataclass(slots=True)
class _Tally:
    mqls: int = 0
    assigned: int = 0
    accepted: int = 0
    in_time: int = 0
    late: int = 0
    reassigned: int = 0
    escalated: int = 0
    reminders: int = 0
    stopped: int = 0
    unowned: int = 0
    hours: list[float] = field(default_factory=list)
    members: dict[str, Counter[str]] = field(default_factory=dict)
    teams: dict[str, Counter[str]] = field(default_factory=dict)


class SalesDesk:
    """Collects a run's MQLs (`note`) and plays the handoff over them (`play`)."""

    def __init__(self, routing: Mapping[str, Any], settings: Settings, trace: Trace | None) -> None:
        self.routing, self.settings, self.trace = routing, settings, trace
        sla = routing.get("sla") or {}
        self.sla = timedelta(seconds=int(sla["seconds"])) if sla.get("seconds") else None
        self.action = str(sla.get("action") or "")
        remind = sla.get("remind_seconds")
        self.remind = timedelta(seconds=int(remind)) if remind else None
        self.noted: list[_Mql] = []

    def note(
        self, view: LeadView, events: Sequence[Event], now: datetime, cause: str, owner: str | None
    ) -> None:
        """Keep what routing needs of a lead's first MQL, for `play`."""
        holds = holding(self.routing, view, events, now)
        mine = view.field("owner")
        self.noted.append(_Mql(str(view.id), now, holds, str(mine) if mine else None, owner, cause))

    # ---------------------------------------------------------------- the desk over time

    def play(self, end: datetime) -> dict[str, Any]:
        """Route every MQL in time order until `end`; the report's handoff section."""
        self.end, self.tally = end, _Tally()
        self.per_day: Counter[str] = Counter()
        self.day: date | None = None
        self.open: Counter[str] = Counter()
        self.turns: Counter[tuple[str, str]] = Counter()
        self.agenda: list[tuple[datetime, int, int, _Mql, int]] = []
        self.seq = 0
        for mql in sorted(self.noted, key=lambda m: m.at):
            self._push(mql.at, MQL, mql, 0)
        self.noted = []
        while self.agenda:
            at, _, kind, mql, turn = heapq.heappop(self.agenda)
            if at.date() != self.day:
                self.day = at.date()
                self.per_day.clear()
            if kind == MQL:
                self._arrive(mql, at)
            elif turn == mql.turn and not mql.accepted:
                (self._accept if kind == ACCEPT else self._expire)(mql, at)
        return self._section()

    def _push(self, at: datetime, kind: int, mql: _Mql, turn: int) -> None:
        if at <= self.end:
            self.seq += 1
            heapq.heappush(self.agenda, (at, self.seq, kind, mql, turn))

    def _desk(self) -> Desk:
        return Desk(today=self.per_day, open=self.open, turns=self.turns)

    def _arrive(self, mql: _Mql, now: datetime) -> None:
        self.tally.mqls += 1
        choice = choose_by(
            self.routing, mql.holds, mql.owner, self._desk(), account_owner=mql.account_owner
        )
        if choice.owner is not None:
            self.tally.assigned += 1
        mql.due = now + self.sla if self.sla is not None else None
        self._give(mql, choice, now, f"MQL ({mql.cause})")

    def _give(self, mql: _Mql, choice: Choice, now: datetime, cause: str) -> None:
        """Hand the MQL to `choice.owner` (or to nobody) and plan the owner's answer."""
        previous, owner = mql.held_by, choice.owner
        if previous is not None:
            self.open[previous] -= 1
        mql.held_by, mql.turn, mql.holder_team = owner, mql.turn + 1, choice.team
        if choice.team is not None:
            mql.team, mql.way = (
                choice.team,
                "round_robin" if choice.how == "round_robin" else "team",
            )
        self._say(now, mql, f"{cause} → {owner or 'nobody'}: {choice.reason}")
        self.tally.unowned += (owner is None) - (previous is None and mql.turn > 1)
        if owner is not None:
            mql.had.add(owner)
            self.open[owner] += 1
            self.per_day[owner] += 1
            if choice.how == "round_robin" and choice.team:
                self.turns[(choice.team, owner)] += 1
            self._count(owner, choice.team, "assigned")
        mql.deadline = mql.due
        if owner is not None:
            self._answer(mql, now, mql.due)
        if mql.due is not None:
            self._push(mql.due, EXPIRE, mql, mql.turn)

    def _answer(self, mql: _Mql, now: datetime, due: datetime | None) -> None:
        """Draw whether and when the owner accepts; plan it, and the reminder it would need."""
        draw = random.Random(f"sales:{self.settings.seed}:{mql.lead}:{mql.turn}")
        accepts = draw.random() < self.settings.accept_rate
        low, high = self.settings.accept_after
        at = now + low + (high - low) * draw.random()
        if accepts and (due is None or at <= due or self.action == "notify"):
            self._push(at, ACCEPT, mql, mql.turn)
        if due is None or self.remind is None:
            return
        reminded = due - self.remind
        if (not accepts or at > reminded) and reminded <= self.end:
            self.tally.reminders += 1

    def _accept(self, mql: _Mql, now: datetime) -> None:
        mql.accepted = True
        owner = mql.held_by
        assert owner is not None
        self.open[owner] -= 1
        self.tally.accepted += 1
        if mql.deadline is None or now <= mql.deadline:
            self.tally.in_time += 1
        else:
            self.tally.late += 1
        self.tally.hours.append((now - mql.at).total_seconds() / 3600)
        self._count(owner, mql.holder_team, "accepted")
        hours = (now - mql.at).total_seconds() / 3600
        self._say(now, mql, f"accepted by {owner}, {hours:.1f} hours after the MQL")

    def _expire(self, mql: _Mql, now: datetime) -> None:
        """The deadline passed unanswered: remind, reassign or escalate, as the routing says."""
        assert self.sla is not None
        late = f"not accepted within {duration_words(int(self.sla.total_seconds()))}"
        owner = mql.held_by
        if owner is not None:
            self._count(owner, mql.holder_team, "expired")
        if self.action == "notify":
            self.tally.reminders += 1
            mql.due = now + self.sla
            self._push(mql.due, EXPIRE, mql, mql.turn)
            self._say(now, mql, f"{late}; {owner or 'nobody'} reminded")
            return
        had, desk = frozenset(mql.had), self._desk()

        def again() -> Choice:
            return choose_by(self.routing, mql.holds, mql.owner, desk, account_owner=None)

        choice = after_deadline(self.routing, owner, mql.team, mql.way, had, desk, again)
        if choice is None or choice.owner is None:
            self.tally.stopped += 1
            mql.due = None
            self._say(
                now,
                mql,
                f"{late}; nobody left to reassign to: stays with {owner or 'nobody'}; "
                "the SLA clock stopped",
            )
            return
        if choice.how == "escalation":
            self.tally.escalated += 1
        else:
            self.tally.reassigned += 1
        mql.due = now + self.sla
        self._give(mql, choice, now, f"{late} by {owner or 'nobody'}")

    def _count(self, owner: str, team: str | None, what: str) -> None:
        self.tally.members.setdefault(owner, Counter())[what] += 1
        if team is not None:
            self.tally.teams.setdefault(team, Counter())[what] += 1

    def _say(self, now: datetime, mql: _Mql, words: str) -> None:
        if self.trace is not None:
            self.trace(f"{now:%Y-%m-%d %H:%M}  lead {mql.lead}  {words}")

    # ---------------------------------------------------------------- the report

    def _section(self) -> dict[str, Any]:
        t = self.tally
        hours = t.hours
        low, high = self.settings.accept_after
        return {
            "routing": self.routing.get("path"),
            "sla": _sla_words(self.routing),
            "accept_rate": self.settings.accept_rate,
            "accept_after_hours": [_hours(low), _hours(high)],
            "mqls": t.mqls,
            "assigned": t.assigned,
            "unassigned": t.unowned,
            "accepted": t.accepted,
            "accepted_in_time": t.in_time,
            "accepted_late": t.late,
            "reassigned": t.reassigned,
            "escalated": t.escalated,
            "reminders": t.reminders,
            "nobody_left": t.stopped,
            "waiting_at_end": sum(n for n in self.open.values() if n > 0),
            "hours_to_accept_median": round(statistics.median(hours), 1) if hours else None,
            "teams": {k: _counts(v) for k, v in sorted(t.teams.items())},
            "members": {k: _counts(v) for k, v in sorted(t.members.items())},
        }


def _counts(counts: Counter[str]) -> dict[str, int]:
    return {what: counts[what] for what in ("assigned", "accepted", "expired")}


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 2)


def _sla_words(routing: Mapping[str, Any]) -> str | None:
    sla = routing.get("sla") or {}
    if not sla.get("seconds"):
        return None
    words = f"accept within {duration_words(int(sla['seconds']))} else {sla.get('action')}"
    if sla.get("escalate_to"):
        words += f", then escalate to {sla['escalate_to']}"
    return words
