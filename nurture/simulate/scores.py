"""Keeping each lead's scores current as events arrive and interest decays.

`compute_scores` recomputes fit and interest from scratch; calling it before
every decision would cost more than the decision. The keeper gets the same
numbers with less work: fit is computed once per lead (again only when
something its rules look at changes), the points of new events are added to
interest as they come, and interest is summed afresh when a decay period of
one of the lead's events ends, which is the only moment decay changes it.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from dsl.graph import Json
from nurture.engine import Event, Scores, compute_scores
from nurture.engine.scoring import grade_of, interest_score
from nurture.simulate.graphs import depends_on
from nurture.simulate.model import Lead

FAR = timedelta(days=36500)


class ScoreKeeper:
    """Brings leads' scores to a given moment under one scoring model (or none)."""

    def __init__(self, model: dict[str, Json] | None) -> None:
        self.model = model
        scoring = model or {}
        self.rules = scoring.get("interest") or []
        self.decay = scoring.get("decay")
        decay = self.decay or {}
        self.every = float(decay.get("every") or 0) if decay.get("percent") else 0.0
        self.interest_grades = (scoring.get("grades") or {}).get("interest")
        fit = scoring.get("fit") or ()
        self.fit_mask = functools.reduce(operator.or_, (depends_on(r.get("when")) for r in fit), 0)
        """What fit rules look at besides fields: a change there means a full recompute."""

    def changed(self, lead: Lead, mask: int) -> None:
        """Note a change to the lead (a `graphs` mask); fit is recomputed if it may depend on it."""
        if mask & self.fit_mask:
            lead.scored = -1

    def refresh(self, lead: Lead, now: datetime) -> None:
        """Bring `lead.view.scores` to `now`."""
        if self.model is None:
            return
        seen, until, events = lead.scored, lead.scores_until, lead.events
        if seen == len(events) and now < until:
            return
        if seen < 0:
            scores = compute_scores(self.model, lead.view, events, now)
            lead.scores_until = self._next_decay(events, now)
        elif now < until:
            new = events[seen:]
            scores = self._interest(lead.view.scores, new, now, lead.view.scores.interest)
            lead.scores_until = min(until, self._next_decay(new, now))
        else:
            scores = self._interest(lead.view.scores, events, now, 0.0)
            lead.scores_until = self._next_decay(events, now)
        lead.scored = len(events)
        if scores != lead.view.scores:
            lead.view = replace(lead.view, scores=scores)

    def _interest(
        self, scores: Scores, events: Sequence[Event], now: datetime, base: float
    ) -> Scores:
        """`scores` with interest set to `base` plus the points of `events` at `now`."""
        interest = base + interest_score(self.rules, self.decay, events, now)
        if interest == scores.interest:
            return scores
        grade = grade_of(interest, self.interest_grades)
        return replace(scores, interest=interest, interest_grade=grade)

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
