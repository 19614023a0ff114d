"""The working copy of one decision: cursor, counters, actions so far, and a lead that
sees its own tags, scores and stage change as steps run.

`decide` starts a `Draft` from the stored enrollment, lets the steps edit it,
and turns it into a `Decision` with `finish`, `park` or `exit`; nothing is
shared with the caller until then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from dsl.graph import Node, StepGraph
from nurture.engine.actions import Action, Decision, Exit, Suppressed
from nurture.engine.calendar import Window, lead_zone, window_zone
from nurture.engine.caps import Cap, Limits
from nurture.engine.conditions import Context, Refs, evaluate
from nurture.engine.loops import iteration_key
from nurture.engine.state import (
    DONE,
    EXITED,
    WAITING,
    EnrollmentState,
    Event,
    LeadView,
    SendHistory,
    WaitingFor,
)

Outcome = str | Decision
"""A step's result: the next step's id to run now, or the decision to return."""


class Draft:
    """One decision in the making."""

    def __init__(
        self,
        start: EnrollmentState,
        lead: LeadView,
        events: Sequence[Event],
        graph: StepGraph,
        now: datetime,
        history: SendHistory,
        global_cap: Cap | None,
    ) -> None:
        self.start, self.lead, self.events, self.graph, self.now = start, lead, events, graph, now
        self.history = [s for s in history if s.at <= now]
        self.global_cap = global_cap
        self.cursor = start.cursor
        self.loops = dict(start.loops)
        self.sent = dict(start.sent)
        self.last_sent = start.last_sent
        self.waiting = start.waiting_for
        """The parked branch this decision resumes; only the first step may use it."""
        self.actions: list[Action] = []
        self.names = {
            str(n.params["name"]): n.id
            for n in graph.nodes.values()
            if n.kind == "send" and n.params.get("name")
        }
        self.lifetime_end = (
            start.entered_at + timedelta(seconds=graph.end_after) if graph.end_after else None
        )

    def context(self, since: datetime | None = None) -> Context:
        """What conditions see: the lead as edited so far, and this enrollment's messages."""
        last = self.sent.get(self.last_sent) if self.last_sent else None
        named = {name: self.sent[nid] for name, nid in self.names.items() if nid in self.sent}
        refs = Refs(self.start.id, last, named)
        return Context(self.lead, self.events, self.now, refs, since)

    def leave_reason(self) -> str | None:
        """Why the enrollment must leave before the next step, if it must."""
        if self.lead.suppressed:
            return "suppressed"
        if self.graph.exit_when is not None and evaluate(self.graph.exit_when, self.context()):
            return "exit condition"
        if self.lifetime_end is not None and self.now >= self.lifetime_end:
            return "lifetime"
        return None

    def limits(self) -> Limits:
        """The window and caps that apply to a touch from this campaign to this lead."""
        window = Window.from_json(self.graph.window) if self.graph.window else None
        return Limits.build(
            window,
            window_zone(window, self.lead) if window else lead_zone(self.lead),
            (Cap.from_json(c) for c in self.graph.caps),
            (s.at for s in self.history if s.campaign == self.graph.name),
            self.global_cap,
            (s.at for s in self.history),
        )

    # -- endings

    def finish(
        self,
        state: str,
        next_run_at: datetime | None = None,
        waiting_for: WaitingFor | None = None,
        exit_reason: str | None = None,
    ) -> Decision:
        ended = state in (DONE, EXITED)
        new = replace(
            self.start,
            cursor=self.cursor,
            state=state,
            next_run_at=next_run_at,
            waiting_for=waiting_for,
            loops={} if state == DONE else self.loops,
            sent=self.sent,
            last_sent=self.last_sent,
            exit_reason=exit_reason,
            ended_at=self.now if ended else None,
        )
        return Decision(tuple(self.actions), new)

    def park(self, until: datetime, waiting: WaitingFor | None = None) -> Decision:
        """Wait at the cursor until `until` (no later than the campaign's `end after`)."""
        if self.lifetime_end is not None:
            until = min(until, self.lifetime_end)
        return self.finish(WAITING, until, waiting)

    def exit(self, reason: str) -> Decision:
        node = self.graph.nodes.get(self.cursor)
        if reason == "suppressed" and node is not None and node.kind == "send":
            p = node.params
            key = iteration_key(self.graph, node, self.loops)
            why = str(self.lead.suppressed)
            self.actions.append(Suppressed(node.id, p["channel"], p["template"], key, why))
        self.actions.append(Exit(reason))
        return self.finish(EXITED, exit_reason=reason)

    def follow(self, node: Node, *kinds: str) -> Outcome:
        """The target of the first edge of one of `kinds`; a step with none ends the flow."""
        for kind in kinds:
            edge = node.edge(kind)
            if edge is not None:
                return edge.target
        return self.finish(DONE)

    def then(self, node: Node) -> Outcome:
        """Where a simple step continues (`next`, or `loop` back to its repeat)."""
        return self.follow(node, "next", "loop")
