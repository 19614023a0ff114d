"""A tiny driver for tests: runs one lead through one campaign on a virtual clock.

It does what an actor would: calls `decide` when the enrollment is due (or
when an event arrives while a branch waits), performs the actions on its
copy of the lead, records sends in the history, and lets a `respond` callback
turn each send into the lead's reactions (an open a day later, a click...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeVar

import dsl
from dsl.graph import StepGraph
from nurture.engine import (
    Action,
    Cap,
    DeliveryKey,
    EmitMql,
    EnrollmentState,
    Event,
    LeadView,
    Score,
    Send,
    SentTouch,
    Tag,
    Untag,
    VirtualClock,
    decide,
)


def campaign(text: str, name: str | None = None) -> StepGraph:
    """Compile `text` (one or more campaigns) and return the named (or only) campaign."""
    program = dsl.build({"t.nurture": text})
    if name is None:
        (graph,) = program.campaigns.values()
        return graph
    return program.campaigns[name]


A = TypeVar("A")
Respond = Callable[[Send, DeliveryKey, datetime], Sequence[Event]]
Change = Callable[[LeadView], LeadView]


@dataclass
class Run:
    """What happened: every action with the moment it was decided, and the final state."""

    lead: LeadView
    log: list[tuple[datetime, Action]] = field(default_factory=list)
    state: EnrollmentState | None = None
    history: list[SentTouch] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    decisions: int = 0

    def sends(self) -> list[tuple[datetime, Send]]:
        return [(t, a) for t, a in self.log if isinstance(a, Send)]

    def templates(self) -> list[str]:
        return [s.template for _, s in self.sends()]

    def of(self, kind: type[A]) -> list[tuple[datetime, A]]:
        return [(t, a) for t, a in self.log if isinstance(a, kind)]


def simulate(
    graph: StepGraph,
    lead: LeadView,
    clock: VirtualClock,
    until: timedelta,
    *,
    respond: Respond | None = None,
    events: Sequence[Event] = (),
    changes: Sequence[tuple[datetime, Change]] = (),
    history: Sequence[SentTouch] = (),
    global_cap: Cap | None = None,
    enrollment_id: int = 1,
) -> Run:
    """Run until the enrollment ends or `until` has passed on `clock`."""
    end = clock.now() + until
    run = Run(lead=lead, history=list(history), events=list(events))
    state = EnrollmentState.start(enrollment_id, graph, clock.now())
    pending = sorted(changes, key=lambda c: c[0])
    while True:
        now = clock.now()
        while pending and pending[0][0] <= now:
            run.lead = pending.pop(0)[1](run.lead)
        seen = [e for e in run.events if e.at <= now]
        decision = decide(state, run.lead, seen, graph, now, run.history, global_cap)
        run.decisions += 1
        assert run.decisions < 10_000, "the simulation does not progress"
        for action in decision.actions:
            run.log.append((now, action))
            _perform(run, action, graph, state, now, respond)
        state = decision.state
        _check_progress(state, now)
        wake = _next_wake(state, run, pending, now)
        if state.ended or wake is None or wake > end:
            break
        assert wake > now, (state, now)
        clock.advance_to(wake)
    run.state = state
    return run


def _check_progress(state: EnrollmentState, now: datetime) -> None:
    """Every enrollment has ended, or waits for a moment strictly in the future."""
    if state.ended:
        assert state.next_run_at is None and state.waiting_for is None
    else:
        assert state.state == "waiting", state
        assert state.next_run_at is not None and state.next_run_at > now, (state, now)


def _perform(
    run: Run,
    action: Action,
    graph: StepGraph,
    state: EnrollmentState,
    now: datetime,
    respond: Respond | None,
) -> None:
    if isinstance(action, Send):
        run.history.append(SentTouch(now, graph.name))
        if respond is not None:
            key = DeliveryKey(state.id, action.node_id, action.iteration)
            run.events.extend(respond(action, key, now))
    elif isinstance(action, Tag):
        run.lead = replace(run.lead, tags=run.lead.tags | {action.tag})
    elif isinstance(action, Untag):
        run.lead = replace(run.lead, tags=run.lead.tags - {action.tag})
    elif isinstance(action, Score):
        run.lead = replace(run.lead, score_delta=run.lead.score_delta + action.delta)
    elif isinstance(action, EmitMql):
        run.lead = replace(run.lead, stage="mql")


def _next_wake(
    state: EnrollmentState,
    run: Run,
    pending: Sequence[tuple[datetime, Change]],
    now: datetime,
) -> datetime | None:
    """When to call `decide` again: when due, or earlier when an event or a change arrives."""
    if state.ended or state.next_run_at is None:
        return None
    wakes = [state.next_run_at]
    if state.waiting_for is not None:
        wakes += [e.at for e in run.events if now < e.at < state.next_run_at]
    wakes += [t for t, _ in pending if now < t < state.next_run_at]
    return min(wakes)


def opens_after(delay: timedelta, *, kinds: Sequence[str] = ("opened",)) -> Respond:
    """A lead who reacts to every touch `delay` after it is sent."""

    def respond(send: Send, key: DeliveryKey, at: datetime) -> list[Event]:
        return [Event(kind, at + delay, key, send.name) for kind in kinds]

    return respond
