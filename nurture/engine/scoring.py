"""Fit, interest (with decay), grades and the MQL rule, from the compiled scoring JSON.

The compiled model (see `dsl.compile._scoring`) is::

    {"fit": [{"points": 20, "when": COND}, ...],
     "interest": [{"points": 5, "event": "clicked"}, {"points": 20, "event": "custom",
                   "name": "webinar_attended"}, ...],
     "decay": {"percent": 25.0, "every": 2592000} | None,
     "grades": {"fit": [{"grade": "A", "at": 40.0}, ..., {"grade": "D", "at": None}]},
     "mql": COND | None}

Interest decays by whole periods: an event's points are multiplied by
(1 - percent/100) ** floor(age / every), so a score only changes at period
boundaries and recomputing it is deterministic for a given `now`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from dsl.graph import Json
from dsl.vocabulary import STAGE_RANK
from nurture.engine.conditions import Context, evaluate
from nurture.engine.state import Event, LeadView, Scores


def compute_scores(
    model: dict[str, Json] | None, lead: LeadView, events: Sequence[Event], now: datetime
) -> Scores:
    """The lead's scores at `now` under `model` (all zero without a model)."""
    if not model:
        return Scores()
    fit = fit_score(model.get("fit") or [], lead, now)
    interest = interest_score(model.get("interest") or [], model.get("decay"), events, now)
    grades = model.get("grades") or {}
    return Scores(
        fit=fit,
        interest=interest,
        fit_grade=grade_of(fit, grades.get("fit")),
        interest_grade=grade_of(interest, grades.get("interest")),
    )


def fit_score(rules: Sequence[dict[str, Json]], lead: LeadView, now: datetime) -> float:
    """The sum of the points of every fit rule whose condition holds on the profile."""
    ctx = Context(lead, (), now)
    return float(sum(rule.get("points", 0) for rule in rules if evaluate(rule.get("when"), ctx)))


def interest_score(
    rules: Sequence[dict[str, Json]],
    decay: dict[str, Json] | None,
    events: Sequence[Event],
    now: datetime,
) -> float:
    """Points per matching event, each decayed by its age; future events do not count."""
    total = 0.0
    for event in events:
        if event.at > now:
            continue
        points = sum(rule.get("points", 0) for rule in rules if _counts(rule, event))
        if points:
            total += points * decay_factor(now - event.at, decay)
    return total


def _counts(rule: dict[str, Json], event: Event) -> bool:
    if rule.get("event") == "custom":
        return event.name == rule.get("name")
    return event.name == rule.get("event")


def decay_factor(age: timedelta, decay: dict[str, Json] | None) -> float:
    """(1 - p) ** floor(age / every); 1 without decay."""
    if not decay or not decay.get("every"):
        return 1.0
    periods = math.floor(age.total_seconds() / float(decay["every"]))
    return float((1 - float(decay.get("percent", 0)) / 100) ** max(periods, 0))


def grade_of(value: float, steps: Sequence[dict[str, Json]] | None) -> str | None:
    """The first grade whose threshold `at` <= value, else the `else` grade (at None)."""
    if not steps:
        return None
    for step in steps:
        at = step.get("at")
        if at is not None and float(at) <= value:
            return str(step["grade"])
    fallback = next((s for s in steps if s.get("at") is None), None)
    return None if fallback is None else str(fallback["grade"])


def mql_due(
    lead: LeadView,
    scores: Scores,
    rule: Json,
    *,
    events: Sequence[Event] = (),
    now: datetime,
) -> bool:
    """True when the MQL rule holds and the lead is not already MQL or further.

    A lead becomes MQL once; a `returned` lead ranks with `lead` and may
    qualify again, which is the point of returning it to nurture.
    """
    if rule is None or is_mql_or_beyond(lead.stage):
        return False
    return evaluate(rule, Context(replace(lead, scores=scores), events, now))


def is_mql_or_beyond(stage: str) -> bool:
    return STAGE_RANK.get(stage.lower(), 0) >= STAGE_RANK["mql"]
