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

Repeats count once: an open (or click) of a delivery within `REPEAT_WINDOW`
after the lead's previous open (click) of the same delivery scores nothing.
Mail scanners and preview panes open a message several times, readers click
twice, and a click link replayed twenty times would otherwise score twenty
clicks, an MQL with the example scoring. The events themselves are all kept
(reports, conditions and exports see them); only interest skips them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from dsl.draw import describe_condition
from dsl.graph import Json
from dsl.vocabulary import INTEREST_ACTIVITIES, STAGE_RANK
from nurture.engine.conditions import Context, Facts, evaluate
from nurture.engine.predicates import Predicate, compile_condition
from nurture.engine.state import Event, LeadView, Scores, positional_builder, with_scores

REPEAT_WINDOW: Final = timedelta(hours=1)
"""An open or click of a delivery this soon after the previous one of it scores nothing."""
REPEATABLE: Final = frozenset({"opened", "clicked"})
"""The events `REPEAT_WINDOW` applies to: message events that readers and scanners repeat."""


def is_repeat(events: Sequence[Event], index: int) -> bool:
    """Whether ``events[index]`` repeats an open or click of the same delivery at most
    `REPEAT_WINDOW` earlier (`events` oldest first, as stores and the simulator keep them)."""
    event = events[index]
    if event.delivery is None or event.name not in REPEATABLE:
        return False
    since = event.at - REPEAT_WINDOW
    for before in range(index - 1, -1, -1):
        earlier = events[before]
        if earlier.at < since:
            return False
        if earlier.name == event.name and earlier.delivery == event.delivery:
            return True
    return False


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
    """Points per matching event, each decayed by its age; future events and repeats
    (`is_repeat`) do not count."""
    total = 0.0
    for index, event in enumerate(events):
        if event.at > now:
            continue
        points = sum(rule.get("points", 0) for rule in rules if _counts(rule, event))
        if points and not is_repeat(events, index):
            total += points * decay_factor(now - event.at, decay)
    return total


@dataclass(frozen=True, slots=True)
class Reason:
    """Points a lead has by one scoring rule, and the rule in words."""

    part: str
    """``fit`` or ``interest``."""
    rule: str
    points: float
    times: int = 1
    """Events the rule counted (interest), 1 for a fit rule."""


def explain(
    model: dict[str, Json] | None, lead: LeadView, events: Sequence[Event], now: datetime
) -> list[Reason]:
    """The rules behind `compute_scores`, each with the points it gave: every fit rule that
    holds, and every interest rule that counted an event (decayed as the score is)."""
    if not model:
        return []
    ctx = Context(lead, (), now)
    found = [
        Reason("fit", f"{_signed(rule)} when {describe_condition(rule.get('when'))}", points)
        for rule in model.get("fit") or []
        if evaluate(rule.get("when"), ctx) and (points := float(rule.get("points", 0)))
    ]
    for rule in model.get("interest") or []:
        counted = [
            decay_factor(now - e.at, model.get("decay"))
            for i, e in enumerate(events)
            if e.at <= now and _counts(rule, e) and not is_repeat(events, i)
        ]
        if counted:
            points = float(rule.get("points", 0)) * sum(counted)
            found.append(
                Reason("interest", f"{_signed(rule)} per {_activity(rule)}", points, len(counted))
            )
    return found


def _signed(rule: dict[str, Json]) -> str:
    points = rule.get("points", 0)
    return f"{points:+g}" if isinstance(points, int | float) else str(points)


def _activity(rule: dict[str, Json]) -> str:
    if rule.get("event") == "custom":
        return f'event "{rule.get("name")}"'
    words = {v: k for k, v in INTEREST_ACTIVITIES.items()}
    return words.get(str(rule.get("event")), str(rule.get("event")))


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


def next_decay(
    model: dict[str, Json] | None, events: Sequence[Event], now: datetime
) -> datetime | None:
    """The next moment after `now` that interest changes by decay alone; None if it never will.

    That is when one of the events that scored points enters a new decay
    period (interest decays by whole periods, so nothing changes in between).
    A store keeps scores as of the last rescore and rescores the lead then,
    so segments and conditions on `interest` see decay without a new event.
    Events later than `now` and repeats do not count, as in `interest_score`.
    """
    decay = (model or {}).get("decay") or {}
    if not decay.get("every") or not decay.get("percent"):
        return None
    every = float(decay["every"])
    rules = (model or {}).get("interest") or []
    soonest: float | None = None
    for index, event in enumerate(events):
        if event.at > now or not any(_counts(rule, event) for rule in rules):
            continue
        if is_repeat(events, index):
            continue
        age = (now - event.at).total_seconds()
        left = (math.floor(age / every) + 1) * every - age
        soonest = left if soonest is None else min(soonest, left)
    return None if soonest is None else now + timedelta(seconds=soonest)


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
    scored = lead if lead.scores is scores else with_scores(lead, scores)
    return evaluate(rule, Context(scored, events, now))


def is_mql_or_beyond(stage: str) -> bool:
    return STAGE_RANK.get(stage.lower(), 0) >= STAGE_RANK["mql"]


_new_scores = positional_builder(Scores)


class CompiledScoring:
    """A scoring model read once, for a caller that scores many leads again and again.

    `compute_scores`, `interest_score` and `mql_due` read the JSON afresh on each
    call, which suits the store (one lead per request, the model read per
    request). The simulator rescores a lead at every event and tests the MQL
    rule as often, so here the fit and MQL conditions are compiled
    (`predicates`), the points of each event name are summed once, and the
    decay's rate and period are read once. The answers are theirs exactly:
    sums are taken in the same order, `tests/engine/test_scoring.py` compares.
    """

    def __init__(self, model: dict[str, Json]) -> None:
        self.model = model
        self.fit_rules = tuple(
            (rule.get("points", 0), compile_condition(rule.get("when")))
            for rule in model.get("fit") or []
        )
        self.points = _points_by_event(model.get("interest") or [])
        decay = model.get("decay") or {}
        self.every = float(decay["every"]) if decay.get("every") else None
        """The decay period in seconds; None: no decay."""
        self.kept = 1 - float(decay.get("percent", 0)) / 100 if self.every else 1.0
        """The share of an event's points left after one decay period."""
        grades = model.get("grades") or {}
        self.fit_grades, self.interest_grades = grades.get("fit"), grades.get("interest")
        rule = model.get("mql")
        self.mql: Predicate | None = None if rule is None else compile_condition(rule)

    def scores(
        self, lead: LeadView, events: Sequence[Event], now: datetime, *, fit: float | None = None
    ) -> Scores:
        """`compute_scores(model, lead, events, now)`; `fit`, when given, is `self.fit(lead,
        now)` already known to the caller (it reads only the profile and the moment)."""
        if fit is None:
            fit = self.fit(lead, now)
        interest = self.interest(events, now)
        fit_grade = grade_of(fit, self.fit_grades)
        return _new_scores(fit, interest, fit_grade, grade_of(interest, self.interest_grades))

    def fit(self, lead: LeadView, now: datetime) -> float:
        """`fit_score` of the model's fit rules."""
        ctx = Facts(lead, (), now)
        return float(sum(points for points, when in self.fit_rules if when.test(ctx) is True))

    def interest(self, events: Sequence[Event], now: datetime, start: int = 0) -> float:
        """`interest_score` of the model's interest rules and decay, over ``events[start:]``
        (the events before `start` only tell repeats, as the simulator adds new events)."""
        total, points_of = 0.0, self.points
        for index in range(start, len(events)):
            event = events[index]
            if event.at > now:
                continue
            points = points_of.get(event.name, 0)
            if points and not is_repeat(events, index):
                total += points * self.decay_factor(now - event.at)
        return total

    def decay_factor(self, age: timedelta) -> float:
        """`decay_factor(age, model["decay"])`."""
        if self.every is None:
            return 1.0
        periods = math.floor(age.total_seconds() / self.every)
        return float(self.kept ** max(periods, 0))

    def interest_grade(self, interest: float) -> str | None:
        return grade_of(interest, self.interest_grades)

    def mql_due(
        self, lead: LeadView, scores: Scores, events: Sequence[Event], now: datetime
    ) -> bool:
        """`mql_due(lead, scores, model["mql"], events=events, now=now)`."""
        if self.mql is None or is_mql_or_beyond(lead.stage):
            return False
        scored = lead if lead.scores is scores else with_scores(lead, scores)
        return self.mql.test(Facts(scored, events, now)) is True


def _points_by_event(rules: Sequence[dict[str, Json]]) -> dict[Any, Any]:
    """Each event name's points under `interest` rules, added up in the rules' order."""
    points: dict[Any, Any] = {}
    for rule in rules:
        name = rule.get("name") if rule.get("event") == "custom" else rule.get("event")
        points[name] = points.get(name, 0) + rule.get("points", 0)
    return points
