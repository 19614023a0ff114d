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
from nurture.engine.calendar import lead_zone, next_opening, window_zone
from nurture.engine.caps import Cap, Limits, next_send_time
from nurture.engine.conditions import Refs, Truth
from nurture.engine.loops import in_round, iteration_key
from nurture.engine.plan import first_targets, plan_for
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
    positional_builder,
)

_new_state = positional_builder(EnrollmentState)
_new_decision = positional_builder(Decision)
_new_refs = positional_builder(Refs)
_new_limits = positional_builder(Limits)

Outcome = str | Decision
"""A step's result: the next step's id to run now, or the decision to return."""


def _sent_at(delivered: Delivered) -> datetime:
    return delivered.at


class Draft:
    """One decision in the making."""

    __slots__ = (
        "_counters",
        "_refs",
        "_sent",
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
        self.loops = start.loops
        """Repeat counters: the stored enrollment's until a repeat changes them (`counters`)."""
        self.sent = start.sent
        """Latest delivery per send step: the stored enrollment's until a send (`record_send`)."""
        self._counters: dict[str, int] | None = None
        self._sent: dict[str, Delivered] | None = None
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
            plan = self.plan
            named = {name: sent[nid] for name, nid in plan.names.items() if nid in sent}
            for name, nids in plan.shared_names.items():
                found = [sent[nid] for nid in nids if nid in sent]
                if found:  # the latest of the sends named so (one, unless a repeat took both)
                    named[name] = max(found, key=_sent_at)
            self._refs = _new_refs(self.start.id, last, named)
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

    def counters(self) -> dict[str, int]:
        """The repeat counters, for a step to change (copied from the enrollment's at first)."""
        if self._counters is None:
            self._counters = dict(self.loops)
            self.loops = self._counters
        return self._counters

    def record_send(self, node_id: str, delivered: Delivered) -> None:
        """A touch from `node_id` went out now: opened/clicked refer to it from here on."""
        if self._sent is None:
            self._sent = dict(self.sent)
            self.sent = self._sent
        self._sent[node_id] = delivered
        self.last_sent = node_id
        self.sends_now += 1
        self._refs = None
        if self.plan.exit_reads & SENT:
            self.checked = False

    def send_time(self) -> tuple[datetime, str | None]:
        """When a touch from this campaign may go out to this lead, and what held it back.

        `next_send_time` with this decision's `limits`; without caps only the
        window can hold a touch back, and that is answered without them.
        """
        plan, now = self.plan, self.now
        window = plan.window  # read first: a malformed window fails before malformed caps
        if plan.caps or self.global_cap is not None:
            return next_send_time(now, self.limits())
        if window is None:
            return now, None
        opened = next_opening(now, window, window_zone(window, self.lead))
        return opened, "window" if opened != now else None

    def limits(self) -> Limits:
        """The window and caps that apply to a touch from this campaign to this lead."""
        window, now, name = self.plan.window, self.now, self.graph.name
        zone = window_zone(window, self.lead) if window else lead_zone(self.lead)
        mine, every = [], []
        for sent in self.history:
            if sent.at <= now:
                every.append(sent.at)
                if sent.campaign == name:
                    mine.append(sent.at)
        if self.sends_now:
            now_too = [now] * self.sends_now
            mine += now_too
            every += now_too
        if len(every) > 1:
            mine.sort()
            every.sort()
        return _new_limits(window, zone, self.plan.caps, tuple(mine), self.global_cap, tuple(every))

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
        new = _new_state(  # every field, in order: faster than `replace`, pinned by a test
            start.id,
            self.cursor,
            start.entered_at,
            state,
            next_run_at,
            waiting_for,
            {} if state == DONE else self.loops,
            self.sent,
            self.last_sent,
            exit_reason,
            self.now if ended else None,
        )
        return _new_decision(tuple(self.actions), new)

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
            # the round's template, as the send would have named it
            template = in_round(self.graph, node, self.loops, str(p["template"]))
            why = str(self.lead.suppressed)
            self.actions.append(Suppressed(node.id, p["channel"], template, key, why))
        self.actions.append(Exit(reason))
        return self.finish(EXITED, exit_reason=reason)

    def follow(self, node: Node, *kinds: str) -> Outcome:
        """The target of the first edge of one of `kinds`; a step with none ends the flow."""
        targets = self.plan.targets.get(id(node))
        if targets is None:  # a node that is not the graph's own: read its edges
            targets = first_targets(node)
        for kind in kinds:
            if kind in targets:
                return targets[kind]
        return self.finish(DONE)

    def then(self, node: Node) -> Outcome:
        """Where a simple step continues (`next`, or `loop` back to its repeat)."""
        return self.follow(node, "next", "loop")
