"""Condition JSON compiled once into closures, for the conditions `decide` runs again and again.

`compile_condition(cond).test(ctx)` answers exactly as `conditions.truth(cond,
ctx)`; the interpreter there stays the reference (and serves one-off checks,
where compiling would cost more than it saves). What the JSON alone
determines is worked out once: each node's operator, field look-ups, ranks,
regular expressions, `within` spans, the right side of comparisons. `and`/`or`
stop at the first argument that decides them, as the interpreter does, but ask
the `cheap` ones first (a grade, a stage, a tag: no walk over the events): the
three-valued `and` and `or` do not depend on the order of their arguments, and
`mql when event "x" count >= 3 within 7 days and fit grade != D` is then
answered from the grade alone for most leads.

A predicate also says what it `reads` of what a decision can change while it
runs (tags, stage, the manual score, the enrollment's sends), so `decide`
re-checks an exit rule only after a step changed something it looks at.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dsl.graph import Json
from nurture.engine.conditions import (
    Refs,
    Scope,
    Truth,
    counted,
    is_truthy,
    span_of,
    timed,
    truth,
)
from nurture.engine.state import BOUNCED, Delivered, Event, LeadView, field_getter
from nurture.engine.values import grade_rank, ranked_test, stage_rank, value_test


def compile_condition(cond: Json) -> Predicate:
    """The condition as a closure that answers as `truth` does, to build once and run often.

    A node too malformed to compile (a `within` that is not a number, an
    unhashable operator: nothing `dsl` writes) is left to the interpreter, so
    it fails, or is never reached, exactly where `truth` would.
    """
    if not isinstance(cond, dict):
        return _FALSE
    try:
        build = _BUILDERS.get(cond.get("op"))
        return build(cond) if build is not None else _FALSE
    except (TypeError, ValueError, OverflowError):
        return Predicate(functools.partial(truth, cond), EVERYTHING, sound=False)


TAGS, STAGE, SCORE, SENT = 1, 2, 4, 8
"""What may change while one decision runs: tags, stage, manual score, this enrollment's sends.
Fields, computed scores, events and the moment stay as they were."""
EVERYTHING = TAGS | STAGE | SCORE | SENT


@dataclass(frozen=True, slots=True)
class Predicate:
    """A compiled condition."""

    test: Callable[[Scope], Truth]
    """The condition's three-valued truth in a context."""
    reads: int
    """Which of `TAGS`, `STAGE`, `SCORE` and `SENT` the answer depends on."""
    cheap: bool = False
    """Answered from the lead's view alone in a few operations, never raising: asked first."""
    sound: bool = True
    """Compiled whole: no part of it left to the interpreter for being malformed (such a part
    may raise, so the arguments around it keep their order, as `truth` asks them)."""


def _false(ctx: Scope) -> Truth:
    return False


_FALSE = Predicate(_false, 0)


def _cheap_first(cond: dict[str, Json]) -> list[Predicate]:
    """The arguments compiled, the cheap ones first (otherwise in their order)."""
    parts = [compile_condition(c) for c in cond.get("args") or ()]
    return sorted(parts, key=lambda p: not p.cheap) if all(p.sound for p in parts) else parts


def _sound(parts: Sequence[Predicate]) -> bool:
    return all(p.sound for p in parts)


def _all(cond: dict[str, Json]) -> Predicate:
    parts = _cheap_first(cond)
    tests, cheap = tuple(p.test for p in parts), all(p.cheap for p in parts)
    if len(tests) == 2:
        return Predicate(_both(*tests), _union(parts), cheap, _sound(parts))

    def all_of(ctx: Scope) -> Truth:
        unknown = False
        for test in tests:
            value = test(ctx)
            if value is False:
                return False
            unknown = unknown or value is None
        return None if unknown else True

    return Predicate(all_of, _union(parts), cheap, _sound(parts))


def _any(cond: dict[str, Json]) -> Predicate:
    parts = _cheap_first(cond)
    tests, cheap = tuple(p.test for p in parts), all(p.cheap for p in parts)
    if len(tests) == 2:
        return Predicate(_either(*tests), _union(parts), cheap, _sound(parts))

    def any_of(ctx: Scope) -> Truth:
        unknown = False
        for test in tests:
            value = test(ctx)
            if value is True:
                return True
            unknown = unknown or value is None
        return None if unknown else False

    return Predicate(any_of, _union(parts), cheap, _sound(parts))


Test = Callable[[Scope], Truth]


def _both(first: Test, second: Test) -> Test:
    """`a and b`, the usual `and`, as `all_of` answers it, without its loop."""

    def both(ctx: Scope) -> Truth:
        a = first(ctx)
        if a is False:
            return False
        b = second(ctx)
        if b is False:
            return False
        return None if a is None or b is None else True

    return both


def _either(first: Test, second: Test) -> Test:
    """`a or b`, the usual `or` (most exit rules), as `any_of` answers it, without its loop."""

    def either(ctx: Scope) -> Truth:
        a = first(ctx)
        if a is True:
            return True
        b = second(ctx)
        if b is True:
            return True
        return None if a is None or b is None else False

    return either


def _not(cond: dict[str, Json]) -> Predicate:
    inner = compile_condition(cond.get("arg"))
    test = inner.test

    def negated(ctx: Scope) -> Truth:
        value = test(ctx)
        return None if value is None else not value

    return Predicate(negated, inner.reads, inner.cheap, inner.sound)


def _union(parts: Iterable[Predicate]) -> int:
    reads = 0
    for part in parts:
        reads |= part.reads
    return reads


def _tagged(cond: dict[str, Json]) -> Predicate:
    tag = cond.get("tag")
    return Predicate(lambda ctx: tag in ctx.lead.tags, TAGS, True)


def _truthy(cond: dict[str, Json]) -> Predicate:
    name = str(cond.get("field") or "")
    get = field_getter(name)
    return Predicate(lambda ctx: is_truthy(get(ctx.lead)), _field_reads(name))


def _field_reads(name: str) -> int:
    return STAGE if name.removeprefix("lead.") == "stage" else 0


# ---------------------------------------------------------------- events


def _engagement(cond: dict[str, Json]) -> Predicate:
    """`opened`/`clicked`/`replied`/`bounced`, of a message, with a link, `within` a span."""
    if cond.get("count") is not None:  # counts are rarer: the interpreter answers them
        return Predicate(functools.partial(truth, cond), SENT)
    kind, link, message = cond["op"], cond.get("link"), cond.get("message")
    span = span_of(cond.get("within"))
    wanted = None if link is None else str(link).casefold()
    bounced, name = kind == BOUNCED, str(message)

    def matches(e: Event, now: datetime) -> bool:
        return (
            e.at <= now
            and (e.name == kind or (bounced and e.name.startswith("bounced_")))
            and (wanted is None or (e.link is not None and wanted in e.link.casefold()))
        )

    def engaged(ctx: Scope) -> Truth:
        refs, now = ctx.refs, ctx.now
        if refs is None:  # a segment: messages by `as` name, events in the last `within`
            named = [e for e in ctx.events if message is None or e.message == message]
            mine = [e for e in named if matches(e, now)]
            return timed(mine, span, ctx, lookback=True)
        ref = refs.last if message is None else refs.named.get(name)
        if ref is None:  # never sent
            return False
        return timed(_of_delivery(ctx.events, ref, refs, matches, now), span, ctx, False)

    return Predicate(engaged, SENT)


def _of_delivery(
    events: Sequence[Event],
    ref: Delivered,
    refs: Refs,
    matches: Callable[[Event, datetime], bool],
    now: datetime,
) -> list[Event]:
    """The matching events of the referenced delivery (`conditions._of_message`)."""
    enrollment, node = refs.enrollment, ref.node
    return [
        e
        for e in events
        if (d := e.delivery)
        and d.node == node
        and d.enrollment == enrollment
        and (d.iteration == ref.iteration or d.iteration == ref.number)
        and matches(e, now)
    ]


def _event(cond: dict[str, Json]) -> Predicate:
    name, span, count = cond.get("name"), span_of(cond.get("within")), cond.get("count")
    if count is not None:  # `event "x" count >= 3 within 7 days`, as `conditions._event`

        def times(ctx: Scope) -> Truth:
            now = ctx.now
            return counted(
                [e.at for e in ctx.events if e.name == name and e.at <= now], count, span, ctx
            )

        return Predicate(times, 0)

    def happened(ctx: Scope) -> Truth:
        now = ctx.now
        return timed([e for e in ctx.events if e.name == name and e.at <= now], span, ctx, True)

    return Predicate(happened, 0)


# ---------------------------------------------------------------- comparisons


def _compare(cond: dict[str, Json]) -> Predicate:
    subject, cmp, value = cond.get("subject"), str(cond.get("cmp")), cond.get("value")
    if subject == "stage":
        stage = ranked_test(cmp, value, stage_rank, False)
        return Predicate(lambda ctx: stage(ctx.lead.stage), STAGE, True)
    if subject in ("grade", "fit_grade"):
        grade = ranked_test(cmp, value, grade_rank, True)
        if subject == "grade":
            return Predicate(lambda ctx: grade(ctx.lead.scores.grade), 0, True)
        return Predicate(lambda ctx: grade(ctx.lead.scores.fit_grade), 0, True)
    number = _NUMBERS.get(subject)
    if number is not None:
        test, reads = value_test(cmp, value), SCORE if subject == "score" else 0
        return Predicate(lambda ctx: test(number(ctx.lead)), reads)
    if subject == "field":
        name = str(cond.get("field") or "")
        get, test = field_getter(name), value_test(cmp, value)
        return Predicate(lambda ctx: test(get(ctx.lead)), _field_reads(name))
    return _FALSE


_NUMBERS: dict[Any, Callable[[LeadView], float]] = {
    "score": lambda lead: lead.score,
    "fit": lambda lead: lead.scores.fit,
    "interest": lambda lead: lead.scores.interest,
}

_BUILDERS: dict[Any, Callable[[dict[str, Json]], Predicate]] = {
    "and": _all,
    "or": _any,
    "not": _not,
    "opened": _engagement,
    "clicked": _engagement,
    "replied": _engagement,
    "bounced": _engagement,
    "tagged": _tagged,
    "event": _event,
    "truthy": _truthy,
    "compare": _compare,
}
