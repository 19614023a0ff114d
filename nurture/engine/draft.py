"""The working copy of one decision: cursor, counters, actions so far, and a lead that
sees its own tags, scores and stage change as steps run.

`decide` starts a `Draft` from the stored enrollment, lets the steps edit it,
and turns it into a `Decision` with `finish`, `park` or `exit`; nothing is
shared with the caller until then.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from dsl.graph import Node, StepGraph
from nurture.engine.actions import Action, Decision, Exit, Suppressed
from nurture.engine.calendar import lead_zone, window_zone
from nurture.engine.caps import Cap, Limits
from nurture.engine.conditions import Refs, Truth
from nurture.engine.loops import iteration_key
from nurture.engine.plan import plan_for
from nurture.engine.predicates import SENT, Predicate
from nurture.engine.state import (
    DONE,
    EXITED,
    WAITING,
    Delivered,
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

    __slots__ = (
        "_refs",
        "actions",
        "checked",
        "cursor",
        "events",
        "global_cap",
        "graph",
        "history",
        "last_sent",
        "lead",
        "lifetime_end",
        "loops",
        "now",
        "plan",
        "sends_now",
        "sent",
        "since",
        "start",
        "waiting",
    )

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
        self.plan = plan_for(graph)
        self.start, self.lead, self.events, self.graph, self.now = start, lead, events, graph, now
        self.global_cap = global_cap
        self.cursor = start.cursor
        self.loops = dict(start.loops)
        self.sent = dict(start.sent)
        self.last_sent = start.last_sent
        self.waiting = start.waiting_for
        """The parked branch this decision resumes; only the first step may use it."""
        self.actions: list[Action] = []
        lifetime = self.plan.lifetime
        self.lifetime_end = start.entered_at + lifetime if lifetime is not None else None
        self.history = history
        """The lead's sends from every campaign, for caps (later ones than `now` are ignored)."""
        self.sends_now = 0
        """Touches this decision sent (at `now`): caps count them too."""
        self.since: datetime | None = None
        """When the waiting branch being tested was reached (see `holds`); else None."""
        self._refs: Refs | None = None
        self.checked = False
        """Whether `leave_reason` found nothing since the last change that could alter that.

        Suppression and the lifetime cannot change while a decision runs; steps
        change the lead only with `edit_lead` and send only with `record_send`,
        which clear this when the exit rule reads what they changed."""

    # -- what conditions see: the draft itself is their scope (see `conditions.Scope`)

    @property
    def refs(self) -> Refs:
        """This enrollment's messages, as `opened`/`clicked` find them."""
        if self._refs is None:
            sent = self.sent
            last = sent.get(self.last_sent) if self.last_sent else None
            named = {name: sent[nid] for name, nid in self.plan.names.items() if nid in sent}
            self._refs = Refs(self.start.id, last, named)
        return self._refs

    def holds(self, cond: Predicate, since: datetime | None = None) -> Truth:
        """The condition's truth now, for a branch reached at `since` (None: not waiting)."""
        self.since = since
        answer = cond.test(self)
        self.since = None
        return answer

    def leave_reason(self) -> str | None:
        """Why the enrollment must leave before the next step, if it must."""
        if self.lead.suppressed:
            return "suppressed"
        exit_rule = self.plan.exit
        if exit_rule is not None and exit_rule.test(self) is True:
            return "exit condition"
        if self.lifetime_end is not None and self.now >= self.lifetime_end:
            return "lifetime"
        self.checked = True
        return None

    # -- what steps change

    def edit_lead(self, lead: LeadView, changed: int) -> None:
        """Continue with `lead`, a copy in which a step changed `changed` (`TAGS`, ...)."""
        self.lead = lead
        if changed & self.plan.exit_reads:
            self.checked = False

    def record_send(self, node_id: str, delivered: Delivered) -> None:
        """A touch from `node_id` went out now: opened/clicked refer to it from here on."""
        self.sent[node_id] = delivered
        self.last_sent = node_id
        self.sends_now += 1
        self._refs = None
        if self.plan.exit_reads & SENT:
            self.checked = False

    def limits(self) -> Limits:
        """The window and caps that apply to a touch from this campaign to this lead."""
        window, now, name = self.plan.window, self.now, self.graph.name
        past = [s for s in self.history if s.at <= now]
        mine = [now] * self.sends_now
        return Limits.build(
            window,
            window_zone(window, self.lead) if window else lead_zone(self.lead),
            self.plan.caps,
            [s.at for s in past if s.campaign == name] + mine,
            self.global_cap,
            [s.at for s in past] + mine,
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
        start = self.start
        new = EnrollmentState(  # every field: faster than `replace`, pinned by a test
            id=start.id,
            cursor=self.cursor,
            entered_at=start.entered_at,
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
            for edge in node.edges:  # `node.edge(kind)`, without a generator per call
                if edge.kind == kind:
                    return edge.target
        return self.finish(DONE)

    def then(self, node: Node) -> Outcome:
        """Where a simple step continues (`next`, or `loop` back to its repeat)."""
        return self.follow(node, "next", "loop")
