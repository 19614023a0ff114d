"""When time alone may bring a lead into a segment that a campaign enrolls from.

Production's scheduler sweeps `enroll when segment` campaigns now and then,
so a lead that drifts into a segment with nothing happening to it is found:
an event leaves a `within` span (`not event "pricing_viewed" within 30
days`), interest decays (`interest < 20`), or `reenter after` lets the
campaign take the lead again. The simulator does not poll: a `DriftWatch`
says the exact next moment one of these may happen for a lead, and the
simulation checks the segment triggers then (`run.Simulation._drift`).

Only while a segment campaign may take the lead and the segment's other
parts (tags, stage, fields) leave it a chance (`graphs.hopeful`); a program
whose segment triggers time cannot make true watches nothing (`active`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from dsl.graph import CompiledProgram
from nurture.engine.conditions import Facts
from nurture.engine.predicates import Predicate, compile_condition
from nurture.engine.state import Event
from nurture.simulate.agenda import MICROSECOND
from nurture.simulate.graphs import Drift, hopeful
from nurture.simulate.model import Campaign, Lead
from nurture.simulate.scores import ScoreKeeper


class DriftWatch:
    """The segments of `on_segment`'s triggers, read for what time alone can make hold."""

    def __init__(
        self, program: CompiledProgram, on_segment: Sequence[Campaign], scores: ScoreKeeper
    ) -> None:
        self.on_segment, self.scores = on_segment, scores
        scoring = program.scoring or {}
        percent = float((scoring.get("decay") or {}).get("percent") or 0)
        points = [float(rule.get("points") or 0) for rule in scoring.get("interest") or ()]
        falls = 0 < percent <= 100 and all(p >= 0 for p in points)  # decay only lowers interest
        drift = Drift()
        self.hopes: dict[str, list[Predicate]] = {}
        """Per campaign, its segments that time alone may make hold, as `hopeful` tests."""
        for run in on_segment:
            for trigger in run.graph.triggers:
                if trigger.get("on") != "segment":
                    continue
                segment = program.segments.get(str(trigger.get("segment")))
                mine = Drift()
                mine.add(segment, falls)
                if mine.spans or (mine.decay and scores.every):
                    drift.add(segment, falls)
                    hope = compile_condition(hopeful(segment, falls))
                    self.hopes.setdefault(run.name, []).append(hope)
        # An event within W stops counting just after W: at `at + W` it still does.
        self.spans = {
            name: tuple(timedelta(seconds=s) + MICROSECOND for s in sorted(spans))
            for name, spans in drift.spans.items()
        }
        self.decay = drift.decay and bool(scores.every)
        self.active = bool(self.hopes)
        """Whether any segment trigger can be made true by time alone."""
        self.reentry = {
            run.name: timedelta(seconds=float(run.graph.reenter_after))
            for run in on_segment
            if run.graph.reenter_after is not None
        }
        """Segment-triggered campaigns a lead may enter again, and after how long."""

    def after_event(
        self, lead: Lead, event: Event, now: datetime, end: datetime
    ) -> datetime | None:
        """After an event: when it leaves a `within`, or interest next decays, if that may
        matter and comes before `end` and before the lead's pending wake-up."""
        spans = self._spans(event.name)
        soonest = event.at + spans[0] if spans else None
        if self.decay:
            self.scores.refresh(lead, now)
            decays = max(lead.scores_until, now + MICROSECOND)
            soonest = decays if soonest is None else min(soonest, decays)
        if soonest is None or soonest > end or (lead.drift and lead.drift <= soonest):
            return None  # too late, or a wake-up comes first (and plans anew)
        return soonest if self._hoping(lead, self._openings(lead, now)[0], now) else None

    def next_moment(self, lead: Lead, now: datetime) -> datetime | None:
        """The next moment time alone may bring the lead into a segment a campaign enrolls
        from: an event leaving a `within` span, interest decaying, or a campaign taking it
        again (`reenter after`); None: no such moment."""
        now_open, soonest = self._openings(lead, now)
        if now_open and self._hoping(lead, now_open, now):
            for event in lead.events:
                for span in self._spans(event.name):
                    at = event.at + span
                    if at > now:
                        if soonest is None or at < soonest:
                            soonest = at
                        break
            if self.decay and lead.events:
                decays = max(lead.scores_until, now + MICROSECOND)  # refreshed by `_hoping`
                soonest = decays if soonest is None else min(soonest, decays)
        return soonest

    def _spans(self, name: str) -> tuple[timedelta, ...]:
        """The spans (plus a microsecond) after which an event `name` may let a segment hold."""
        spans = self.spans.get(name)
        if spans is None and name.startswith("bounced_"):
            spans = self.spans.get("bounced")
        return spans or ()

    def _openings(self, lead: Lead, now: datetime) -> tuple[list[Campaign], datetime | None]:
        """The segment-triggered campaigns that may take the lead now, and when one next may.

        Not while the lead is in it, nor again without `reenter after`, nor after
        suppression; again once `reenter after` has passed since its last run.
        """
        if lead.view.suppressed:
            return [], None
        now_open, later = [], None
        for run in self.on_segment:
            if any(e.run is run for e in lead.active):
                continue
            ends = [p.ended_at for p in lead.past if p.campaign == run.name]
            again = self.reentry.get(run.name) if ends else timedelta(0)
            if again is None:
                continue
            at = max([e for e in ends if e is not None], default=now) + again
            if at <= now:
                now_open.append(run)
            elif later is None or at < later:
                later = at
        return now_open, later

    def _hoping(self, lead: Lead, runs: Sequence[Campaign], now: datetime) -> bool:
        """Whether time alone may bring the lead into a segment one of `runs` enrolls from."""
        facts = None
        for run in runs:
            for hope in self.hopes.get(run.name, ()):
                if facts is None:
                    self.scores.refresh(lead, now)
                    facts = Facts(lead.view, lead.events, now)
                if hope.test(facts) is True:
                    return True
        return False
