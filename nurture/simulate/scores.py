"""Keeping each lead's scores current as events arrive and interest decays.

`compute_scores` recomputes fit and interest from scratch; calling it before
every decision would cost more than the decision. The keeper gets the same
numbers with less work: fit is computed once per lead (again only when
something its rules look at changes), the points of new events are added to
interest as they come, and interest is summed afresh when a decay period of
one of the lead's events ends, which is the only moment decay changes it.
The model is read once (`CompiledScoring`), the MQL rule compiled with it.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Sequence
from datetime import datetime, timedelta

from dsl.graph import Json
from nurture.engine import Event, Scores
from nurture.engine.scoring import CompiledScoring, grade_of
from nurture.engine.state import positional_builder, with_scores
from nurture.simulate.graphs import depends_on
from nurture.simulate.model import Lead

FAR = timedelta(days=36500)
_new_scores = positional_builder(Scores)


class ScoreKeeper:
    """Brings leads' scores to a given moment under one scoring model (or none)."""

    def __init__(self, model: dict[str, Json] | None) -> None:
        self.model = None if model is None else CompiledScoring(model)
        decay = (model or {}).get("decay") or {}
        self.every = float(decay.get("every") or 0) if decay.get("percent") else 0.0
        fit = (model or {}).get("fit") or ()
        self.fit_mask = functools.reduce(operator.or_, (depends_on(r.get("when")) for r in fit), 0)
        """What fit rules look at besides fields: a change there means a full recompute."""

    def changed(self, lead: Lead, mask: int) -> None:
        """Note a change to the lead (a `graphs` mask); fit is recomputed if it may depend on it."""
        if mask & self.fit_mask:
            lead.scored = -1

    def refresh(self, lead: Lead, now: datetime) -> None:
        """Bring `lead.view.scores` to `now`."""
        model = self.model
        if model is None:
            return
        seen, until, events = lead.scored, lead.scores_until, lead.events
        if seen == len(events) and now < until:
            return
        view = lead.view
        if seen < 0:
            scores = model.scores(view, events, now)
            lead.scores_until = self._next_decay(events, now)
        elif now < until:
            scores = self._interest(view.scores, events, now, view.scores.interest, seen)
            lead.scores_until = min(until, self._next_decay(events[seen:], now))
        else:
            scores = self._interest(view.scores, events, now, 0.0, 0)
            lead.scores_until = self._next_decay(events, now)
        lead.scored = len(events)
        if scores != view.scores:
            lead.view = with_scores(view, scores)

    def mql_due(self, lead: Lead, now: datetime) -> bool:
        """Whether the `mql when` rule makes the lead an MQL now (its scores brought to `now`)."""
        model = self.model
        if model is None or model.mql is None or lead.mql_at is not None:
            return False
        self.refresh(lead, now)
        view = lead.view
        return model.mql_due(view, view.scores, lead.events, now)

    def _interest(
        self, scores: Scores, events: Sequence[Event], now: datetime, base: float, start: int
    ) -> Scores:
        """`scores` with interest set to `base` plus the points of ``events[start:]`` at `now`."""
        assert self.model is not None
        interest = base + self.model.interest(events, now, start)
        if interest == scores.interest:
            return scores
        grade = grade_of(interest, self.model.interest_grades)
        return _new_scores(scores.fit, interest, scores.fit_grade, grade)

    def _next_decay(self, events: Sequence[Event], now: datetime) -> datetime:
        """The next moment one of `events` enters a new decay period."""
        every = self.every
        if not every or not events:
            return now + FAR
        soonest = math.inf
        for event in events:
            age = (now - event.at).total_seconds()
            soonest = min(soonest, (math.floor(age / every) + 1) * every - age)
        return now + timedelta(seconds=soonest)
