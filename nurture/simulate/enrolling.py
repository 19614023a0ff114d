"""What a change to a lead sets off: enrollments, triggers, nudges and drift wake-ups.

The part of the simulator's loop (`run.Simulation`) that every happening and
every decision calls into: the wake-up helpers over the agenda, enrolling a
lead, checking the triggers a happening may fire, waking the enrollments a
change matters to, and planning the lead's next segment check. The loop's
state is declared here and set up by `run.Simulation.__init__`; `happenings`
and `decisions` build on this class, each with one job.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from dsl.graph import CompiledProgram
from nurture.engine import (
    Candidate,
    DeliveryKey,
    EnrollmentState,
    PastEnrollment,
    may_enter,
    should_enroll,
)
from nurture.engine.conditions import Facts
from nurture.engine.triggers import Happening, Segments
from nurture.simulate.agenda import DRIFT, NUDGE, WAKE, Agenda
from nurture.simulate.behaviour import Behaviour
from nurture.simulate.drift import DriftWatch
from nurture.simulate.graphs import ANY, ENGAGE
from nurture.simulate.handoff import SalesDesk
from nurture.simulate.model import Campaign, Enrollment, Lead, Progress, Settings, Tally
from nurture.simulate.scores import ScoreKeeper
from nurture.simulate.trace import StepTrace


class LeadOps:
    """The loop's state, and what a change to one lead sets off."""

    program: CompiledProgram
    settings: Settings
    progress: Progress | None
    first: int
    campaigns: dict[str, Campaign]
    entry: list[Campaign]
    on_tag: dict[str, list[Campaign]]
    on_event: dict[str, list[Campaign]]
    on_segment: list[Campaign]
    on_sweep: list[Campaign]
    spans: list[timedelta]
    scores: ScoreKeeper
    segments: Segments
    drift: DriftWatch
    keep: timedelta
    start: datetime
    end: datetime
    behaviour: Behaviour
    agenda: Agenda
    trace: StepTrace
    next_id: int
    tally: Tally
    desk: SalesDesk | None

    def _push(self, at: datetime, kind: int, subject: Any, payload: Any = None) -> int:
        return self.agenda.push(at, kind, subject, payload)

    def _schedule(self, enrollment: Enrollment, at: datetime) -> None:
        enrollment.due = at
        if at <= self.end:
            enrollment.ticket = self.agenda.push(at, WAKE, enrollment)

    # ---------------------------------------------------------------- enrollments

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
                gate = run.gate
                if gate is not None and gate.test(Facts(lead.view, (), now)) is not True:
                    continue  # not in any of its segments whatever its scores and events
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
