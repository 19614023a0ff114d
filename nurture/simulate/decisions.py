"""The lead's enrollments deciding: `decide` called, its steps counted, its actions done.

Each decision's steps (told by the core's step observer) are counted per
step and per branch taken; its actions change the lead (tags, score, stage),
send (the lead's touch history for caps, its reactions drawn and scheduled),
enroll it elsewhere, or end the enrollment. A change then wakes whatever it
may matter to: the MQL rule, segment triggers, the lead's other enrollments.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from nurture.engine import (
    Deferred,
    DeliveryKey,
    EmitMql,
    EnrollInto,
    Exit,
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
)
from nurture.engine.state import (
    DONE,
    ENDED,
    WAITING,
    positional_builder,
    with_score_delta,
    with_tags,
)
from nurture.simulate.agenda import EVENT
from nurture.simulate.graphs import SCORES, STAGE, TAGS
from nurture.simulate.happenings import Happenings
from nurture.simulate.model import Enrollment

WEEK = timedelta(days=7)
_new_touch = positional_builder(SentTouch)
_new_key = positional_builder(DeliveryKey)


class Decisions(Happenings):
    """Enrollments deciding, and what their actions do."""

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
        cutoff = now - self.keep
        old = 0
        while history[old].at <= cutoff:
            old += 1
        if old:
            del history[:old]
        tally, counted = self.tally, run.counts
        if len(history) > counted.max_touches_7d or len(history) > tally.max_touches_7d:
            # The sends of the last 7 days are at most those kept: only then may one be a
            # new most, for the run or for this campaign; once the most of either is known,
            # most sends skip the count.
            total = mine = 0
            week = now - WEEK
            for touch in reversed(history):
                if touch.at <= week:
                    break
                total += 1
                mine += touch.campaign == run.name
            tally.max_touches_7d = max(tally.max_touches_7d, total)
            counted.max_touches_7d = max(counted.max_touches_7d, mine)
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
