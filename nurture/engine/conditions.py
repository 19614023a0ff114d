"""Evaluate condition JSON (as compiled by `dsl`) against a lead, its events and a moment.

One evaluator serves branches, exit conditions, scoring rules, the MQL rule and
segments, so it is pure and total: an unknown operator, a missing field, a
type mismatch or a bad regular expression makes an atom false, never an
exception — a running campaign must not stop on one odd lead. How two values
compare is `values`' job.

It is three-valued because of `within`. Inside a branch that waits (the
context has `since`), an event atom that has not happened yet is *unknown*
until its own deadline, not false; `truth` returns None while the answer may
still change. That keeps `if not opened within 3 days` from taking its yes
edge the moment the branch is reached.

This interpreter is the reference and serves one-off checks (scoring,
segments, triggers); `predicates` compiles the same JSON into closures for
the conditions `decide` runs again and again, and for callers that test many
leads (`scoring.CompiledScoring`, `triggers.Segments`), and must answer alike.
"""

from __future__ import annotations

import operator
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from dsl.graph import Json
from nurture.engine.state import BOUNCED, Delivered, EnrollmentId, Event, LeadView
from nurture.engine.values import compare_ranked, compare_values, grade_rank, stage_rank

Truth = bool | None
"""True, False, or None: not known yet (a `within` that is still open)."""


@dataclass(frozen=True, slots=True)
class Refs:
    """How `opened`/`clicked` find their message inside one enrollment."""

    enrollment: EnrollmentId
    last: Delivered | None = None
    """The last send of the enrollment: what a bare `opened` means."""
    named: Mapping[str, Delivered] = field(default_factory=dict)
    """The latest delivery of each `send ... as NAME`."""


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a condition may look at."""

    lead: LeadView
    events: Sequence[Event]
    now: datetime
    refs: Refs | None = None
    """None outside an enrollment (segments, scoring): messages match by `as` name."""
    since: datetime | None = None
    """When a waiting branch was reached; `within` then counts from here."""


class Facts:
    """What `Context` holds, as a plain object: for compiled conditions tested again and again.

    A frozen dataclass costs several times as much to build; a caller that
    tests many leads (`scoring.CompiledScoring`, `triggers.Segments`) builds
    one of these per test instead. Conditions only read it.
    """

    __slots__ = ("events", "lead", "now", "refs", "since")

    def __init__(self, lead: LeadView, events: Sequence[Event], now: datetime) -> None:
        self.lead, self.events, self.now = lead, events, now
        self.refs: Refs | None = None
        self.since: datetime | None = None


class Scope(Protocol):
    """What a condition reads, as `Context` has it; `decide` passes its working draft."""

    @property
    def lead(self) -> LeadView: ...
    @property
    def events(self) -> Sequence[Event]: ...
    @property
    def now(self) -> datetime: ...
    @property
    def refs(self) -> Refs | None: ...
    @property
    def since(self) -> datetime | None: ...


def evaluate(cond: Json, ctx: Context) -> bool:
    """True when the condition holds now (unknown counts as false)."""
    return truth(cond, ctx) is True


def truth(cond: Json, ctx: Context) -> Truth:
    """The condition's three-valued truth at `ctx.now`."""
    if not isinstance(cond, dict):
        return False
    handler = _OPS.get(cond.get("op"))
    return handler(cond, ctx) if handler is not None else False


def _and(cond: dict[str, Json], ctx: Context) -> Truth:
    """False at the first false argument; else unknown if one is, else true."""
    unknown = False
    for c in cond.get("args") or ():
        value = truth(c, ctx)
        if value is False:
            return False
        unknown = unknown or value is None
    return None if unknown else True


def _or(cond: dict[str, Json], ctx: Context) -> Truth:
    """True at the first true argument; else unknown if one is, else false."""
    unknown = False
    for c in cond.get("args") or ():
        value = truth(c, ctx)
        if value is True:
            return True
        unknown = unknown or value is None
    return None if unknown else False


def _not(cond: dict[str, Json], ctx: Context) -> Truth:
    value = truth(cond.get("arg"), ctx)
    return None if value is None else not value


def _tagged(cond: dict[str, Json], ctx: Context) -> Truth:
    return cond.get("tag") in ctx.lead.tags


def _truthy(cond: dict[str, Json], ctx: Context) -> Truth:
    return is_truthy(ctx.lead.field(str(cond.get("field") or "")))


def is_truthy(value: Any) -> bool:
    """A field as a yes/no: text is false when empty or a word such as "no", "off", "null"."""
    if isinstance(value, str):
        return value.strip().lower() not in _FALSY
    return bool(value)


_FALSY = frozenset(("", "0", "false", "no", "n", "off", "none", "null"))


# ---------------------------------------------------------------- events


def _engagement(cond: dict[str, Json], ctx: Context) -> Truth:
    kind, link = cond["op"], cond.get("link")
    found = [
        e
        for e in ctx.events
        if _is_kind(e.name, kind) and e.at <= ctx.now and _link_matches(e.link, link)
    ]
    count = cond.get("count")
    if count is not None:
        mine = _of_enrollment(found, cond.get("message"), ctx)
        return counted([e.at for e in mine or ()], count, span_of(cond.get("within")), ctx)
    mine = _of_message(found, cond.get("message"), ctx)
    if mine is None:
        return False
    return timed(mine, span_of(cond.get("within")), ctx, lookback=ctx.refs is None)


def _event(cond: dict[str, Json], ctx: Context) -> Truth:
    found = [e for e in ctx.events if e.name == cond.get("name") and e.at <= ctx.now]
    count = cond.get("count")
    if count is not None:
        return counted([e.at for e in found], count, span_of(cond.get("within")), ctx)
    return timed(found, span_of(cond.get("within")), ctx, lookback=True)


def _is_kind(name: str, kind: str) -> bool:
    return name == kind or (kind == BOUNCED and name.startswith("bounced_"))


def _link_matches(link: str | None, wanted: Json) -> bool:
    """`clicked "pricing"`: the click's link is that name or contains it (case aside)."""
    if wanted is None:
        return True
    return link is not None and str(wanted).casefold() in link.casefold()


def _of_message(events: list[Event], message: Json, ctx: Context) -> list[Event] | None:
    """The events of the referenced message; None when it was never sent.

    In an enrollment the reference is one delivery: the latest of the send step
    (a repeat's round 3 asks about tip 3, not about tip 1), with or without `within`.
    """
    refs = ctx.refs
    if refs is None:
        return [e for e in events if message is None or e.message == message]
    ref = refs.last if message is None else refs.named.get(str(message))
    if ref is None:
        return None
    return [e for e in events if e.delivery and ref.is_key(e.delivery, refs.enrollment)]


def _of_enrollment(events: list[Event], message: Json, ctx: Context) -> list[Event] | None:
    """What a count counts: a named message's events as `_of_message` finds them; with no
    message, in an enrollment, the events of all its messages (not only the last one)."""
    refs = ctx.refs
    if refs is None or message is not None:
        return _of_message(events, message, ctx)
    return [e for e in events if e.delivery and e.delivery.enrollment == refs.enrollment]


def span_of(within: Json) -> timedelta | None:
    """A `within` in seconds as a span (None: no `within`)."""
    return None if within is None else timedelta(seconds=float(within))


def timed(events: list[Event], span: timedelta | None, ctx: Scope, lookback: bool) -> Truth:
    """Whether one of `events` falls in the `within` span.

    Outside a waiting branch, `within W` means "in the last W". In a branch
    reached at `since`, the span ends at since + W (unknown until then) and,
    for lookback atoms (custom events), starts at since - W: "at some moment
    of the wait, the event was at most W ago". Message events need no lower
    bound; their delivery bounds them.
    """
    if span is None:
        return bool(events)
    if ctx.since is None:
        if not events:
            return False
        start = ctx.now - span
        return any(e.at >= start for e in events)
    deadline = ctx.since + span
    lower = ctx.since - span if lookback else None
    if events and any(e.at <= deadline and (lower is None or e.at >= lower) for e in events):
        return True
    return None if ctx.now < deadline else False


def counted(times: list[datetime], count: Json, span: timedelta | None, ctx: Scope) -> Truth:
    """`count <cmp> N [within W]` over the moments of the matching events (all by `ctx.now`).

    Without `within`, every event so far counts. Outside a waiting branch, the
    events of the last W count. In a branch reached at `since`, what is compared
    is the most events any W-long span ending during the wait held (the peak),
    so `count >= 3 within 7 days` is "three within some 7 days, the last of them
    during the wait", as `event "x" within 7 days` is the same with one. The
    peak only grows until the deadline, so the answer is known early when no
    larger peak could change it (`>= 3` once 3 are seen; `< 3` is false then),
    and unknown (None) until the deadline otherwise.
    """
    if not isinstance(count, dict):
        return False
    test = COUNT_TESTS.get(count.get("cmp"))
    number = count.get("n")
    if test is None or not isinstance(number, int):
        return False
    if span is None:
        return test(len(times), number)
    if ctx.since is None:
        start = ctx.now - span
        return test(sum(1 for at in times if at >= start), number)
    deadline = ctx.since + span
    most = peak(times, span, ctx.since, min(ctx.now, deadline))
    if ctx.now >= deadline or settled(str(count.get("cmp")), most, number):
        return test(most, number)
    return None


def settled(cmp: str, peak: int, number: int) -> bool:
    """Whether `peak <cmp> number` stays as it is however much the peak still grows."""
    return peak > number or (peak == number and cmp in (">=", "<"))


def peak(times: list[datetime], span: timedelta, first: datetime, last: datetime) -> int:
    """The most of `times` that any span [t - `span`, t] holds, for t from `first` to `last`.

    The count changes only where an event enters, so the candidates for t are
    `first` and each event time between `first` and `last`.
    """
    ordered = sorted(times)
    ends = [first, *(at for at in ordered if first <= at <= last)]
    return max(bisect_right(ordered, t) - bisect_left(ordered, t - span) for t in ends)


COUNT_TESTS: dict[Any, Callable[[int, int], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
"""How a count compares with its number."""


# ---------------------------------------------------------------- comparisons


def _compare(cond: dict[str, Json], ctx: Context) -> Truth:
    subject, cmp, value = cond.get("subject"), str(cond.get("cmp")), cond.get("value")
    lead = ctx.lead
    if subject == "stage":
        return compare_ranked(lead.stage, cmp, value, stage_rank, False)
    if subject in ("grade", "fit_grade"):
        letter = lead.scores.grade if subject == "grade" else lead.scores.fit_grade
        return compare_ranked(letter, cmp, value, grade_rank, True)
    numbers = {"score": lead.score, "fit": lead.scores.fit, "interest": lead.scores.interest}
    if subject in numbers:
        return compare_values(numbers[str(subject)], cmp, value)
    if subject == "field":
        return compare_values(lead.field(str(cond.get("field") or "")), cmp, value)
    return False


_OPS: dict[Any, Callable[[dict[str, Json], Context], Truth]] = {
    "and": _and,
    "or": _or,
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
