"""What happens to a lead besides decisions: its arrival, its events, its MQL, its sweeps.

A lead arrives (enters the entry campaigns, fires `enroll when tagged` for its
own tags and `enroll when segment`), reacts (an open, a click, a custom
event: scores, the MQL rule, triggers, the enrollments waiting on it), may
become an MQL (counted once, noted for the sales desk), is swept when quiet
(`enroll when inactive for`) and is checked for segments when time alone may
bring it into one (`drift`).
"""

from __future__ import annotations

from datetime import datetime

from nurture.engine import Event, EventOccurred, LeadCreated, LeadView, Sweep, TagAdded
from nurture.engine.state import with_closed, with_stage, with_suppressed
from nurture.engine.triggers import NOT_ACTIVITY
from nurture.engine.values import as_instant
from nurture.simulate.agenda import SWEEP
from nurture.simulate.behaviour import BOUNCED_HARD, UNSUBSCRIBED
from nurture.simulate.enrolling import LeadOps
from nurture.simulate.graphs import ANY, CUSTOM, ENGAGE, SCORES, STAGE
from nurture.simulate.leads import Profile
from nurture.simulate.model import Campaign, Lead
from nurture.simulate.report import StepCounts, iso


class Happenings(LeadOps):
    """A lead's arrival, events, MQL, inactivity sweeps and segment checks."""

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

    def _drift(self, lead: Lead, now: datetime) -> None:
        """Check segment triggers, as production's periodic sweep would, then plan the next."""
        lead.drift = None
        self._triggers(lead, Sweep(now), now, self.on_segment)
        self._plan_drift(lead, now)
