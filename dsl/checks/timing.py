"""Time: durations, `wait until`, send windows, frequency caps and the campaign's lifetime."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Iterator
from datetime import date

from dsl import ast, walk
from dsl import vocabulary as voc
from dsl.checks.base import Context, _did_you_mean, _error, _settings, _unknown, _warning
from dsl.errors import Diagnostic

# ---------------------------------------------------------------- durations, days and times

_ZERO_HINTS = {
    "wait": "remove the wait, or wait at least 1 minute",
    "within": "drop `within` to check at once, or allow at least 1 minute",
}


MAX_DAYS = 36500
"""The longest duration, 100 years: the engine adds durations to dates, which end at year 9999."""


def check_durations(ctx: Context) -> Iterator[Diagnostic]:
    for role, duration in walk.all_durations(ctx.program):
        if duration.unit.value not in voc.UNITS:
            # `3 dayz` should become `3 days`, and `1 hourz` `1 hour`
            units = [u for u in voc.UNITS if u.endswith("s") == (duration.amount != 1)]
            known = "use minutes, hours, days or weeks"
            yield _unknown("unknown-unit", "unit", duration.unit, units, known)
        elif duration.amount == 0 and role != "reenter after":
            hint = _ZERO_HINTS.get(role, "use at least 1 minute")
            message = f"`{role} {_text(duration)}` is zero long"
            yield _error("zero-duration", duration.span, message, hint)
        elif (walk.seconds(duration) or 0) > MAX_DAYS * 86400:
            message = f"`{role} {_text(duration)}` is longer than 100 years"
            hint = f"use at most {MAX_DAYS} days ({MAX_DAYS // 7} weeks)"
            yield _error("long-duration", duration.span, message, hint)


def _text(duration: ast.Duration) -> str:
    return f"{duration.amount} {duration.unit.value}"


def _bad_time(word: ast.Word) -> list[Diagnostic]:
    hour, _, minute = word.value.partition(":")
    if int(hour) <= 23 and int(minute) <= 59:
        return []
    message = f"`{word.value}` is not a time of day"
    return [_error("bad-time", word.span, message, "times go from 00:00 to 23:59")]


def _unknown_day(word: ast.Word, known: Iterable[str]) -> Diagnostic:
    return _unknown("unknown-weekday", "day", word, known, "use a day such as monday or mon")


def check_wait_until(ctx: Context) -> Iterator[Diagnostic]:
    for campaign in ctx.program.campaigns():
        for stmt in walk.statements(campaign.body):
            if not isinstance(stmt, ast.WaitUntil):
                continue
            if stmt.day is not None and stmt.day.value not in voc.WEEKDAYS:
                yield _unknown_day(stmt.day, voc.WEEKDAYS)
            if stmt.date is not None:
                yield from _bad_date(stmt.date)
            yield from _bad_time(stmt.time)


def _bad_date(word: ast.Word) -> Iterator[Diagnostic]:
    try:
        date.fromisoformat(word.value)
    except ValueError as e:
        message = f"`{word.value}` is not a date: {e}"
        yield _error("bad-date", word.span, message, "write a date that exists, as YYYY-MM-DD")


# ---------------------------------------------------------------- windows and caps


def check_windows(ctx: Context) -> Iterator[Diagnostic]:
    for campaign in ctx.program.campaigns():
        for window in _settings(campaign, ast.Window):
            yield from _window_days(window)
            bad = [*_bad_time(window.start), *_bad_time(window.end)]
            yield from bad
            if not bad and _minutes(window.start) >= _minutes(window.end):
                start, end = window.start.span, window.end.span
                span = ast.Span(start.path, start.line, start.column, end.line, end.end_column)
                message = f"the window {window.start.value}-{window.end.value} is empty"
                hint = "write the earlier time first; a window cannot cross midnight"
                yield _error("bad-window", span, message, hint)
            if window.zone is not None and window.zone.value != "lead":
                yield from _zone(window.zone)


def _minutes(word: ast.Word) -> int:
    hour, _, minute = word.value.partition(":")
    return int(hour) * 60 + int(minute)


def _window_days(window: ast.Window) -> Iterator[Diagnostic]:
    if window.day_range:
        for day in (d for d in window.days if d.value not in voc.WEEKDAYS):
            if day.value not in voc.DAY_GROUPS:
                yield _unknown_day(day, voc.WEEKDAYS)
                continue
            message = f"`{day.value}` is several days, not one end of a range"
            hint = "a range runs from one day to another, as in `mon-fri`"
            yield _error("unknown-weekday", day.span, message, hint)
        return
    seen: set[int] = set()
    for day in window.days:
        days = voc.DAY_GROUPS.get(day.value)
        days = (voc.WEEKDAYS[day.value],) if day.value in voc.WEEKDAYS else days
        if days is None:
            yield _unknown_day(day, [*voc.WEEKDAYS, *voc.DAY_GROUPS])
        elif seen.intersection(days):
            message = f"`{day.value}` is already in the window"
            yield _error("bad-window", day.span, message, "list each day once")
        seen.update(days or ())


def _zone(word: ast.Word) -> Iterator[Diagnostic]:
    try:
        zoneinfo.ZoneInfo(word.value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        otherwise = 'use an IANA name such as "Asia/Shanghai", or `lead time`'
        hint = _did_you_mean(word.value, zoneinfo.available_timezones(), otherwise, '"{}"')
        yield _error("bad-zone", word.span, f'unknown time zone "{word.value}"', hint)


def check_caps(ctx: Context) -> Iterator[Diagnostic]:
    for campaign in ctx.program.campaigns():
        caps = [s for s in campaign.settings if isinstance(s, ast.Cap)]
        for cap in caps:
            if cap.count == 0:
                message = f"`cap 0 per {cap.period.value}` lets nothing through"
                yield _error("bad-cap", cap.span, message, "remove the cap, or allow 1 or more")
            if cap.period.value not in voc.CAP_PERIODS:
                yield _unknown("bad-cap", "cap period", cap.period, voc.CAP_PERIODS)
        valid = [c for c in caps if c.count > 0 and c.period.value in voc.CAP_PERIODS]
        for short in valid:
            longer = [c for c in valid if _period(c) > _period(short) and c.count < short.count]
            if longer:
                yield _contradiction(short, min(longer, key=lambda c: (c.count, c.span.line)))


def _period(cap: ast.Cap) -> int:
    return int(voc.CAP_PERIODS[cap.period.value].total_seconds())


def _contradiction(short: ast.Cap, long: ast.Cap) -> Diagnostic:
    a, b = short.period.value, long.period.value
    message = f"`cap {short.count} per {a}` is above `cap {long.count} per {b}` on line "
    hint = f"one {a} cannot have more touches than its {b}; allow {long.count} or fewer"
    return _error("bad-cap", short.span, message + str(long.span.line), hint)


def check_over_cap(ctx: Context) -> Iterator[Diagnostic]:
    for campaign in ctx.program.campaigns():
        limits: dict[str, int] = {}
        for cap in _settings(campaign, ast.Cap):
            if cap.period.value in voc.CAP_PERIODS and cap.count > 0:
                limits[cap.period.value] = min(cap.count, limits.get(cap.period.value, cap.count))
        for period, limit in limits.items():
            days = voc.CAP_PERIODS[period].days
            found = walk.crowded_sends(campaign.body, days * 86400, limit)
            if found:
                span = min(found, key=lambda s: (s.line, s.column))
                message = (
                    f"up to {found[span]} touches in {days} day{'s' * (days > 1)} on one path, "
                    f"but the cap is {limit} per {period}; the extra touches will be deferred"
                )
                yield _warning("over-cap", span, message, "wait longer between sends")


# ---------------------------------------------------------------- lifetime


def check_lifetime(ctx: Context) -> Iterator[Diagnostic]:
    for campaign in ctx.program.campaigns():
        for end in _settings(campaign, ast.EndAfter)[:1]:
            yield from _outlasting(campaign, end.duration)


def _outlasting(campaign: ast.Campaign, end: ast.Duration) -> Iterator[Diagnostic]:
    life = walk.seconds(end)
    for role, duration in walk.campaign_durations(campaign):
        length = walk.seconds(duration)
        if role in ("wait", "within") and life and length and length > life:
            message = f"`{role} {_text(duration)}` outlasts the campaign: `end after {_text(end)}`"
            hint = f"a lead leaves the campaign after {_text(end)}; shorten this or `end after`"
            yield _error("within-beyond-lifetime", duration.span, message, hint)
