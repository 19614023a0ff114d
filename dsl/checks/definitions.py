"""Program-wide definitions: the scoring block and field declarations."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from dsl import ast, walk
from dsl import vocabulary as voc
from dsl.checks.base import Context, _error, _keyword, _one_of, _repeats, _unknown, _warning
from dsl.errors import Diagnostic

_GRADES = f"grades are {_one_of(voc.GRADES)}"
MAX_POINTS = 10_000
"""The most points one scoring rule may add or take: scores are stored as database integers."""


def check_scoring(ctx: Context) -> Iterator[Diagnostic]:
    for scoring in ctx.program.scorings():
        for rule in scoring.interest:
            if not rule.is_event and rule.activity.value not in voc.INTEREST_ACTIVITIES:
                known = voc.INTEREST_ACTIVITIES
                otherwise = f'use {_one_of(known)}, or event "name"'
                yield _unknown("unknown-activity", "activity", rule.activity, known, otherwise)
        yield from _too_many_points(scoring)
        yield from _events_in_fit(scoring)
        for decay in scoring.decay:
            if not 0 < decay.percent <= 100:
                message = f"a decay of {decay.percent:g}% is not possible"
                span = _keyword(decay.span, "decay")
                yield _error("bad-decay", span, message, "decay by more than 0%, up to 100%")
        for word, first in _repeats(rule.target for rule in scoring.grades):
            hint = f"the first is on line {first.span.line}"
            yield _error("bad-grade", word.span, f"a second `grade {word.value}` rule", hint)
        for grades in scoring.grades:
            yield from _grade_rule(grades)


def _events_in_fit(scoring: ast.Scoring) -> Iterator[Diagnostic]:
    """Fit is the lead's profile: the engine scores fit rules without the lead's events, so
    `event "x"` there never holds (and `not event "x"`, or `count < 3`, always does)."""
    for rule in scoring.fit:
        for sub in walk.subconditions(rule.cond):
            if isinstance(sub, ast.Engagement | ast.EventCond):
                what = "an event" if isinstance(sub, ast.EventCond) else f"`{sub.kind}`"
                message = f"a fit rule asks about {what}, but fit reads only the lead's profile"
                hint = 'score behaviour under `interest:` (`+15 per event "x"`), or in `mql when`'
                yield _error("event-in-fit", sub.span, message, hint)


def _too_many_points(scoring: ast.Scoring) -> Iterator[Diagnostic]:
    rules: list[ast.FitRule | ast.InterestRule] = [*scoring.fit, *scoring.interest]
    for rule in rules:
        if abs(rule.points) > MAX_POINTS:
            message = f"{rule.points:+d} points is more than a rule may give or take"
            hint = f"use at most {MAX_POINTS:,} points either way"
            yield _error("too-many-points", rule.span, message, hint)


def _grade_rule(rule: ast.GradeRule) -> Iterator[Diagnostic]:
    if rule.target.value not in ("fit", "interest"):
        yield _unknown(
            "bad-grade", "score", rule.target, ("fit", "interest"), "grade fit or interest"
        )
    for step in rule.steps:
        if step.letter.value not in voc.GRADES:
            yield _unknown("unknown-grade", "grade", step.letter, voc.GRADES, _GRADES)
    for word, _ in _repeats(step.letter for step in rule.steps):
        yield _error("bad-grade", word.span, f"grade {word.value} is given twice")
    elses = [step for step in rule.steps if step.threshold is None]
    if not elses:
        hint = "end it with `else` and the lowest grade, e.g. `else D`"
        yield _error("bad-grade", rule.steps[-1].span, "the grade rule has no `else`", hint)
    for step in elses[1:]:
        yield _error("bad-grade", step.span, "a second `else` in the grade rule")
    if elses and elses[0] is not rule.steps[-1]:
        yield _error("bad-grade", elses[0].span, "`else` must come last in a grade rule")
    bars = [(step, step.threshold) for step in rule.steps if step.threshold is not None]
    for (high, top), (low, bar) in itertools.pairwise(bars):
        if bar >= top:
            message = (
                f"`{low.letter.value} >= {bar:g}` is not below `{high.letter.value} >= {top:g}`"
            )
            hint = "list the grades from the highest threshold down"
            yield _error("bad-grade", low.span, message, hint)


def check_field_decls(ctx: Context) -> Iterator[Diagnostic]:
    for decl in ctx.program.fields():
        name, type_ = decl.name.value, decl.type.value
        if type_ not in voc.FIELD_TYPES:
            yield _unknown("unknown-field-type", "field type", decl.type, voc.FIELD_TYPES)
        standard = voc.LEAD_FIELDS.get(name)
        if standard is not None and standard != type_:
            message = f"`{name}` is a standard {standard} field; this declares it {type_}"
            hint = "choose another name, or remove the declaration"
            yield _warning("field-shadows-standard", decl.name.span, message, hint)
