"""Syntax tree to diagnostics: every check is a plain function listed in `CHECKS`.

Each check takes a `Context` and yields `Diagnostic`s; `run_checks` runs them
all and returns every problem, so a marketer sees the whole list at once.
`CODES` names every diagnostic code with a one-line description.
"""

from __future__ import annotations

import itertools
import re
import zoneinfo
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from jinja2 import TemplateSyntaxError

from dsl import ast, walk
from dsl import vocabulary as voc
from dsl.errors import ERROR, WARNING, Diagnostic
from dsl.templates import TemplateSource, template_filename

CODES: dict[str, str] = {
    "duplicate-campaign": "Two campaigns have one name, in one file or across files.",
    "duplicate-segment": "Two segments have one name.",
    "duplicate-scoring": "The program has more than one `scoring` block.",
    "duplicate-routing": "The program has more than one `routing` block.",
    "duplicate-field": "A `fields` block declares one field twice.",
    "duplicate-setting": "A campaign repeats a setting it may have only once.",
    "setting-after-step": "A campaign setting is written below the campaign's first step.",
    "unknown-channel": "A `send` names a channel that does not exist.",
    "unknown-template": "The template file for a `send` or `notify sales` is missing.",
    "template-error": "A template file or a `subject` text is not valid Jinja.",
    "unknown-variable": "A template or subject uses a variable that templates do not get.",
    "missing-subject": "An email has no `subject` and its template no subject block.",
    "empty-name": "A template name, tag, campaign or other name is empty.",
    "unknown-field": "A condition or template reads a lead field that is not declared.",
    "unknown-unit": "A duration's unit is not minutes, hours, days or weeks.",
    "zero-duration": "A wait or a time limit is zero long.",
    "unknown-weekday": "A `wait until` or `window` names a day that does not exist.",
    "bad-time": "A time of day is not between 00:00 and 23:59.",
    "bad-date": "A date does not exist in the calendar.",
    "unknown-stage": "`stage` is compared with something that is not a lifecycle stage.",
    "unknown-grade": "A grade is not one of the grade letters.",
    "unknown-list": "A bare word in a comparison is no stage, grade, true/false or named list.",
    "type-mismatch": "A comparison mixes numbers, text, lists and true/false.",
    "bad-regex": "A `matches` pattern is not a valid regular expression.",
    "unknown-campaign": "`enroll` names a campaign that does not exist.",
    "self-enroll": "A campaign enrolls leads into itself.",
    "unknown-segment": "`enroll when segment` names a segment that does not exist.",
    "no-trigger": "A campaign has no `enroll when` and no campaign enrolls it.",
    "unknown-message": "An engagement check names no earlier `send ... as NAME`.",
    "duplicate-message": "Two sends in one campaign have one `as` name.",
    "engagement-before-send": "`opened`/`clicked`/`replied`/`bounced` comes before any send.",
    "unreachable": "A step can never run: every path to it has ended in `exit`.",
    "loop-without-wait": "A `repeat` has no wait in it, so all its rounds run at once.",
    "within-beyond-lifetime": "A wait or `within` is longer than the campaign's `end after`.",
    "split-total": "The shares of a `split` do not add up to 100%.",
    "duplicate-split-label": "Two arms of one `split` have one label.",
    "bad-window": "A send window is empty or backwards, or lists a day twice.",
    "bad-zone": "A send window names a time zone that does not exist.",
    "bad-cap": "A frequency cap is zero, has an unknown period or contradicts another.",
    "over-cap": "A path sends more touches in a period than the campaign's cap allows.",
    "unknown-activity": "An interest rule counts an activity that does not exist.",
    "bad-decay": "An interest decay is not above 0% and at most 100%.",
    "bad-grade": "A grade rule is out of order, lacks an `else`, or grades an unknown score.",
    "unknown-sla-action": "A routing SLA names an action that does not exist.",
    "unknown-field-type": "A field declaration names a type that does not exist.",
    "field-shadows-standard": "A field declaration changes the type of a standard lead field.",
}
"""Every diagnostic code the checker emits, with what it means (docs are generated from it)."""


@dataclass(frozen=True, slots=True)
class Context:
    """What every check reads."""

    program: ast.Program
    """All modules, checked together."""
    templates: TemplateSource | None
    """Where templates are looked up; None skips the checks that read template files."""
    fields: Mapping[str, str]
    """Known lead fields and their types: the standard ones and the declared ones."""


Check = Callable[[Context], Iterator[Diagnostic]]
_S = TypeVar("_S", bound=ast.Setting)


def run_checks(program: ast.Program, templates: TemplateSource | None = None) -> list[Diagnostic]:
    """Run every check in `CHECKS` and return all the problems found."""
    declared = {d.name.value: d.type.value for d in program.fields()}
    ctx = Context(program, templates, {**voc.LEAD_FIELDS, **declared})
    return [found for check in CHECKS for found in check(ctx)]


# ---------------------------------------------------------------- helpers


def _error(code: str, span: ast.Span, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(ERROR, code, span, message, hint)


def _warning(code: str, span: ast.Span, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(WARNING, code, span, message, hint)


def _one_of(words: Iterable[str]) -> str:
    items = list(words)
    return ", ".join(items[:-1]) + " or " + items[-1] if len(items) > 1 else "".join(items)


def _did_you_mean(
    word: str, known: Iterable[str], otherwise: str | None = None, form: str = "`{}`"
) -> str | None:
    """`did you mean `x`?` for the closest known word, ignoring case; else `otherwise`."""
    by_lower = {k.lower(): k for k in known}
    found = voc.suggest(word, by_lower)
    return "did you mean " + form.format(by_lower[found]) + "?" if found else otherwise


def _unknown(
    code: str, what: str, word: ast.Word, known: Iterable[str], otherwise: str | None = None
) -> Diagnostic:
    """`unknown <what> `word``, with a "did you mean" or the list of known words as hint."""
    known = list(known)
    hint = _did_you_mean(word.value, known, otherwise or f"use {_one_of(known)}")
    return _error(code, word.span, f"unknown {what} `{word.value}`", hint)


def _keyword(span: ast.Span, word: str) -> ast.Span:
    """The span of the keyword that starts a node, e.g. the `if` of a whole if-block."""
    return ast.Span(span.path, span.line, span.column, span.line, span.column + len(word))


def _text(duration: ast.Duration) -> str:
    return f"{duration.amount} {duration.unit.value}"


def _repeats(words: Iterable[ast.Word]) -> Iterator[tuple[ast.Word, ast.Word]]:
    """`(word, first)` for every word whose value came before, with where it first came."""
    seen: dict[str, ast.Word] = {}
    for word in words:
        if seen.setdefault(word.value, word) is not word:
            yield word, seen[word.value]


def _settings(campaign: ast.Campaign, kind: type[_S]) -> list[_S]:
    return [s for s in campaign.settings if isinstance(s, kind)]


# ---------------------------------------------------------------- top-level items and settings


def check_duplicate_items(ctx: Context) -> Iterator[Diagnostic]:
    program = ctx.program
    named = (("campaign", program.campaigns()), ("segment", program.segments()))
    for what, items in named:
        for word, first in _repeats(i.name for i in items):
            message = f'{what} "{word.value}" is defined twice'
            hint = f"the first is at {first.span.path}:{first.span.line}; rename one"
            yield _error(f"duplicate-{what}", word.span, message, hint)
    for word, first in _repeats(d.name for d in program.fields()):
        message = f"field `{word.value}` is declared twice"
        hint = f"the first is at {first.span.path}:{first.span.line}"
        yield _error("duplicate-field", word.span, message, hint)
    for what, blocks in (("scoring", program.scorings()), ("routing", program.routings())):
        for block in blocks[1:]:
            hint = f"a program has one; the first is at {blocks[0].span.path}:{blocks[0].span.line}"
            span = _keyword(block.span, what)
            yield _error(f"duplicate-{what}", span, f"a second `{what}` block", hint)


_SETTING_NAMES = {
    ast.KindSetting: "kind",
    ast.Trigger: "enroll when",
    ast.ExitWhen: "exit when",
    ast.Reenter: "reenter",
    ast.Window: "window",
    ast.Cap: "cap",
    ast.EndAfter: "end after",
}


def check_settings(ctx: Context) -> Iterator[Diagnostic]:
    for campaign in ctx.program.campaigns():
        seen: dict[str, ast.Setting] = {}
        for setting in campaign.settings:
            name = _SETTING_NAMES[type(setting)]
            key = f"cap ... per {setting.period.value}" if isinstance(setting, ast.Cap) else name
            first = seen.setdefault(key, setting)
            if first is not setting and not isinstance(setting, ast.Trigger):
                hint = f"the first is on line {first.span.line}; keep one"
                yield _error("duplicate-setting", setting.span, f"`{key}` is set twice", hint)
        start = campaign.body[0].span.line if campaign.body else None
        for setting in campaign.settings:
            if start is not None and setting.span.line > start:
                name = _SETTING_NAMES[type(setting)]
                message = f"the setting `{name}` comes after the campaign's first step"
                hint = f"move it above line {start}, to the other settings"
                yield _error("setting-after-step", setting.span, message, hint)


def check_empty_names(ctx: Context) -> Iterator[Diagnostic]:
    for item in ctx.program.items():
        for what, word in walk.quoted_names(item):
            if not word.value.strip():
                yield _error(
                    "empty-name", word.span, f"empty {what}", "write it between the quotes"
                )


# ---------------------------------------------------------------- channels and templates


def _sends(ctx: Context) -> Iterator[tuple[ast.Send, int | None]]:
    """Every send with the count of its innermost `repeat`."""
    for campaign in ctx.program.campaigns():
        for stmt, loop in walk.statements_in_loops(campaign.body):
            if isinstance(stmt, ast.Send):
                yield stmt, loop


def check_channels(ctx: Context) -> Iterator[Diagnostic]:
    for send, _ in _sends(ctx):
        if send.channel.value not in voc.CHANNELS:
            yield _unknown("unknown-channel", "channel", send.channel, voc.CHANNELS)


def check_templates(ctx: Context) -> Iterator[Diagnostic]:
    if ctx.templates is None:
        return
    for channel, word, loop, needs_subject in walk.template_uses(ctx.program):
        names = walk.expand_name(word.value, loop) if word.value.strip() else None
        missing: list[str] = []
        for name in names or ():
            problem = yield from _template(ctx, ctx.templates, channel, name, word, needs_subject)
            missing.extend(() if problem is None else [_wanted(channel, name, problem)])
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            message = f"no {channel} template `{word.value}`: looked for "
            hint = "create the file beside the campaign, or correct the name"
            yield _error(
                "unknown-template", word.span, message + ", ".join(missing[:3]) + more, hint
            )


def _wanted(channel: str, name: str, problem: str = "") -> str:
    wanted = "templates/" + template_filename(channel, name)
    return f"{wanted} ({problem})" if problem else wanted


def _template(
    ctx: Context, source: TemplateSource, channel: str, name: str, word: ast.Word, needs: bool
) -> Generator[Diagnostic, None, str | None]:
    """Problems in one template file; returns None if found, else why not ("" for missing)."""
    try:
        found = source.find(channel, name, word.span.path)
    except UnicodeDecodeError as e:
        message = f"template {_wanted(channel, name)} is not UTF-8 text: {e}"
        yield _error("template-error", word.span, message)
        return None
    except (OSError, ValueError) as e:
        return str(e)
    if found is None:
        return ""
    facts = yield from _jinja(ctx, found.text, f"template {found.path}", word.span)
    if needs and facts is not None and not facts.has_subject:
        message = f"this email has no subject, here or as a subject block in {found.path}"
        hint = 'add subject "..." to the send, or {% block subject %} to the template'
        yield _warning("missing-subject", word.span, message, hint)
    return None


def check_subjects(ctx: Context) -> Iterator[Diagnostic]:
    for send, _ in _sends(ctx):
        if send.subject is not None:
            yield from _jinja(ctx, send.subject.value, "the subject", send.subject.span)


def _jinja(
    ctx: Context, text: str, where: str, span: ast.Span
) -> Generator[Diagnostic, None, walk.TemplateFacts | None]:
    """Syntax errors, unknown variables and unknown lead fields in one template's text."""
    facts = walk.template_facts(text)
    if isinstance(facts, TemplateSyntaxError):
        line = "" if where == "the subject" else f" on line {facts.lineno}"
        yield _error("template-error", span, f"error in {where}{line}: {facts.message}")
        return None
    for name in sorted(facts.variables - voc.TEMPLATE_GLOBALS):
        known = "templates may use " + _one_of(sorted(voc.TEMPLATE_GLOBALS))
        hint = f"did you mean `lead.{name}`?" if name in ctx.fields else None
        hint = hint or _did_you_mean(name, voc.TEMPLATE_GLOBALS, known)
        yield _warning("unknown-variable", span, f"unknown variable `{name}` in {where}", hint)
    for field in sorted(facts.lead_fields - ctx.fields.keys()):
        hint = _did_you_mean(field, ctx.fields, "declare it in a `fields` block", "`lead.{}`")
        yield _warning("unknown-field", span, f"unknown lead field `lead.{field}` in {where}", hint)
    return facts


# ---------------------------------------------------------------- conditions


def check_condition_fields(ctx: Context) -> Iterator[Diagnostic]:
    for cond in walk.all_conditions(ctx.program):
        if isinstance(cond, ast.Compare) and cond.subject.field is not None:
            field, span = cond.subject.field, cond.subject.span
        elif isinstance(cond, ast.Truthy):
            field, span = cond.field, cond.span
        else:
            continue
        if field not in ctx.fields:
            hint = _did_you_mean(field, ctx.fields, "declare it in a `fields` block", "`lead.{}`")
            yield _error("unknown-field", span, f"unknown lead field `lead.{field}`", hint)


_SUBJECT_TYPES = {
    "score": "number",
    "fit": "number",
    "interest": "number",
    "grade": "grade",
    "fit_grade": "grade",
    "stage": "stage",
}


def check_comparisons(ctx: Context) -> Iterator[Diagnostic]:
    for cond in walk.all_conditions(ctx.program):
        if not isinstance(cond, ast.Compare):
            continue
        subject = cond.subject
        kind = ctx.fields.get(subject.field or "") if subject.kind == "field" else None
        kind = kind or _SUBJECT_TYPES.get(subject.kind)
        who = f"lead.{subject.field}" if subject.kind == "field" else subject.kind.replace("_", " ")
        if kind in ("number", "text", "bool", "date", "stage", "grade"):
            yield from _compare(cond, who, kind)


def _compare(cond: ast.Compare, who: str, kind: str) -> Iterator[Diagnostic]:
    """Type errors and unknown words in `who <op> value`, where `who` is of type `kind`."""
    value, listed = cond.value, cond.op in ("in", "not in")
    if cond.op == "matches":
        if kind != "text":
            message = f"`matches` works on text, but `{who}` is {_TYPE_WORDS[kind]}"
            yield _error("type-mismatch", cond.subject.span, message)
        yield from _regex(value)
    elif listed and isinstance(value.value, tuple):
        for item in value.value:
            if item.kind == "list":
                yield _error(
                    "type-mismatch", item.span, "a list inside a list", "lists do not nest"
                )
            else:
                yield from _scalar(who, kind, "==", item)
    elif listed and value.kind == "name" and value.value in voc.NAMED_LISTS and kind != "text":
        message = f"`{value.value}` is a list of text, but `{who}` is {_TYPE_WORDS[kind]}"
        yield _error("type-mismatch", value.span, message)
    elif listed and value.kind == "name" and value.value not in voc.NAMED_LISTS:
        yield _unknown_name(value)
    elif listed and value.kind != "name":
        hint = 'write a list such as ["a", "b"] or a named list such as `freemail`'
        yield _error("type-mismatch", value.span, f"`{cond.op}` needs a list", hint)
    elif not listed:
        yield from _scalar(who, kind, cond.op, value)


def _regex(value: ast.Value) -> Iterator[Diagnostic]:
    try:
        re.compile(str(value.value))
    except (re.error, OverflowError, RecursionError, ValueError) as e:
        hint = "patterns are Python regular expressions"
        yield _error("bad-regex", value.span, f"the pattern does not compile: {e}", hint)


def _unknown_name(value: ast.Value) -> Diagnostic:
    name = str(value.value)
    quote = f'to compare with text, put it in double quotes: "{name}"'
    hint = _did_you_mean(name, [*voc.NAMED_LISTS, "true", "false"], quote)
    return _error("unknown-list", value.span, f"unknown name `{name}`: no list or value", hint)


def _scalar(who: str, kind: str, op: str, value: ast.Value) -> Iterator[Diagnostic]:
    """`who op value` for one value: a stage, grade, number, text, date or true/false."""
    word = value.value if value.kind == "name" else None
    if value.kind == "list":
        message = f"`{op}` compares `{who}` with one value, not a list"
        hint = f"to test membership of a list, write `{who} in [...]`"
        yield _error("type-mismatch", value.span, message, hint)
    elif kind in ("stage", "grade"):
        yield from _stage_or_grade(kind, value)
    elif word in ("true", "false") and (kind != "bool" or op not in ("==", "!=")):
        message = f"`{who}` is {_TYPE_WORDS[kind]}; it cannot be `{op} {word}`"
        yield _error("type-mismatch", value.span, message)
    elif word in voc.NAMED_LISTS:
        yield _error("type-mismatch", value.span, f"`{word}` is a list", f"write `{who} in {word}`")
    elif word is not None and word not in ("true", "false"):
        yield _unknown_name(value)
    elif word is None and (kind, value.kind) in _MISMATCHES:
        shown = f'"{value.value}"' if value.kind == "string" else f"{value.value:g}"
        got = "text" if value.kind == "string" else "a number"
        message = f"`{who}` is {_TYPE_WORDS[kind]}, but {shown} is {got}"
        yield _error("type-mismatch", value.span, message, _MISMATCHES[kind, value.kind])


_TYPE_WORDS = {
    "number": "a number",
    "text": "text",
    "bool": "true or false",
    "date": "a date",
    "stage": "a stage",
    "grade": "a grade",
}
_MISMATCHES = {
    ("number", "string"): "write the number without quotes",
    ("text", "number"): "put text in double quotes",
    ("date", "number"): 'write the date in double quotes, as in "2026-01-31"',
    ("bool", "string"): "compare with true or false, or write the field alone",
    ("bool", "number"): "compare with true or false, or write the field alone",
}


_GRADES = f"grades are {_one_of(voc.GRADES)}"


def _stage_or_grade(kind: str, value: ast.Value) -> Iterator[Diagnostic]:
    known = voc.STAGES if kind == "stage" else voc.GRADES
    if value.kind == "number":
        hint = f"{kind}s are {_one_of(known)}"
        yield _error("type-mismatch", value.span, f"a {kind} is compared with a number", hint)
    elif value.value not in known:
        word = ast.Word(str(value.value), value.span)
        yield _unknown(f"unknown-{kind}", kind, word, known, f"{kind}s are {_one_of(known)}")


# ---------------------------------------------------------------- durations, days and times

_ZERO_HINTS = {
    "wait": "remove the wait, or wait at least 1 minute",
    "within": "drop `within` to check at once, or allow at least 1 minute",
}


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


# ---------------------------------------------------------------- enrollment and messages


def check_enrollment(ctx: Context) -> Iterator[Diagnostic]:
    names = {c.name.value for c in ctx.program.campaigns()}
    segments = {s.name.value for s in ctx.program.segments()}
    for campaign in ctx.program.campaigns():
        for stmt in walk.statements(campaign.body):
            word = stmt.campaign if isinstance(stmt, ast.EnrollStmt) else None
            if word is None or not word.value.strip():
                continue
            if word.value == campaign.name.value:
                message = f'campaign "{word.value}" enrolls itself'
                again = "use `repeat` to go round again, or enroll another campaign"
                yield _warning("self-enroll", word.span, message, again)
            elif word.value not in names:
                hint = _did_you_mean(word.value, names, None, '"{}"')
                yield _error("unknown-campaign", word.span, f'no campaign "{word.value}"', hint)
        for trigger in _settings(campaign, ast.Trigger):
            word = trigger.value if trigger.kind == "segment" else None
            if word is not None and word.value.strip() and word.value not in segments:
                hint = _did_you_mean(word.value, segments, None, '"{}"')
                yield _error("unknown-segment", word.span, f'no segment "{word.value}"', hint)


def check_triggers(ctx: Context) -> Iterator[Diagnostic]:
    enrolled = {
        stmt.campaign.value
        for campaign in ctx.program.campaigns()
        for stmt in walk.statements(campaign.body)
        if isinstance(stmt, ast.EnrollStmt) and stmt.campaign.value != campaign.name.value
    }
    for campaign in ctx.program.campaigns():
        if not _settings(campaign, ast.Trigger) and campaign.name.value not in enrolled:
            message = f'no lead can enter campaign "{campaign.name.value}"'
            hint = "add `enroll when ...`, or `enroll` it from another campaign"
            yield _warning("no-trigger", campaign.name.span, message, hint)


def check_messages(ctx: Context) -> Iterator[Diagnostic]:
    for campaign in ctx.program.campaigns():
        yield from _duplicate_messages(campaign)
        aliases = [
            s.alias
            for s in walk.statements(campaign.body)
            if isinstance(s, ast.Send) and s.alias is not None
        ]
        named = {alias.value: alias for alias in reversed(aliases)}
        exits = [s.cond for s in _settings(campaign, ast.ExitWhen)]
        for cond in [*exits, *walk.branch_conditions(campaign.body)]:
            for found in walk.engagements(cond):
                # `exit when` may name any send of the campaign; an `if` only one above it
                above = [a for a in aliases if cond in exits or _before(a.span, found.span)]
                if found.message and found.message.value not in {a.value for a in above}:
                    yield _unknown_message(found.message, above, named)
    for item in ctx.program.items():
        for cond in () if isinstance(item, ast.Campaign) else walk.item_conditions(item):
            for found in walk.engagements(cond):
                if found.message is not None:
                    yield _unknown_message(found.message, [], {})


def _duplicate_messages(campaign: ast.Campaign) -> Iterator[Diagnostic]:
    """Two sends named alike on one path; on different branches they are one message."""
    seen: dict[str, list[tuple[ast.Word, walk.Arms]]] = {}
    for send, arms in walk.statements_in_arms(campaign.body):
        if not isinstance(send, ast.Send) or send.alias is None:
            continue
        same = seen.setdefault(send.alias.value, [])
        clash = next((w for w, other in same if not walk.exclusive(arms, other)), None)
        if clash is not None:
            hint = f"the first is on line {clash.span.line}; give each send its own name"
            message = f"a second send named `{send.alias.value}`"
            yield _error("duplicate-message", send.alias.span, message, hint)
        same.append((send.alias, arms))


def _before(a: ast.Span, b: ast.Span) -> bool:
    return (a.line, a.column) < (b.line, b.column)


def _unknown_message(
    word: ast.Word, earlier: list[ast.Word], named: Mapping[str, ast.Word]
) -> Diagnostic:
    later = named.get(word.value)
    hint = f"`{word.value}` is only sent later, on line {later.span.line}" if later else None
    otherwise = f"name a send above with `as {word.value}`"
    hint = hint or _did_you_mean(word.value, [a.value for a in earlier], otherwise)
    return _error("unknown-message", word.span, f"no send above is named `{word.value}`", hint)


# ---------------------------------------------------------------- flow


def check_engagement_order(ctx: Context) -> Iterator[Diagnostic]:
    for campaign in ctx.program.campaigns():
        for found in walk.engagements_before_send(campaign.body):
            message = f"`{found.kind}` is checked before anything is sent on this path"
            hint = "send a message first: the check is about the last message sent"
            yield _error("engagement-before-send", _keyword(found.span, found.kind), message, hint)


_KEYWORDS = {ast.If: "if", ast.Split: "split", ast.Repeat: "repeat"}


def check_unreachable(ctx: Context) -> Iterator[Diagnostic]:
    for campaign in ctx.program.campaigns():
        yield from _unreachable(campaign.body)


def _unreachable(block: walk.Block) -> Iterator[Diagnostic]:
    """The first step of `block` after one that always exits, and those of inner blocks."""
    for stmt, after in itertools.pairwise((*block, None)):
        assert stmt is not None
        for inner in walk.child_blocks(stmt):
            yield from _unreachable(inner)
        if after is not None and walk.exits(stmt):
            keyword = _KEYWORDS.get(type(stmt))
            why = f"every path through the `{keyword}` above ends in `exit`" if keyword else ""
            why = why or "it comes after `exit`"
            word = _KEYWORDS.get(type(after))
            span = after.span if word is None else _keyword(after.span, word)
            hint = "remove it, or the `exit` that comes before it"
            yield _error("unreachable", span, f"this step can never run: {why}", hint)
            return


def check_loops(ctx: Context) -> Iterator[Diagnostic]:
    for campaign in ctx.program.campaigns():
        for stmt in walk.statements(campaign.body):
            if not isinstance(stmt, ast.Repeat) or stmt.times < 2 or walk.has_wait(stmt.body):
                continue
            if not any(walk.exits(s) for s in stmt.body):  # a loop that exits runs once
                message = f"`repeat {stmt.times} times` has no wait: all rounds would run at once"
                hint = "add a `wait` (or `wait until`, or a check `within` a time) to the loop"
                yield _error("loop-without-wait", _keyword(stmt.span, "repeat"), message, hint)


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


def check_splits(ctx: Context) -> Iterator[Diagnostic]:
    for campaign in ctx.program.campaigns():
        for split in walk.statements(campaign.body):
            if not isinstance(split, ast.Split):
                continue
            total = sum(arm.percent for arm in split.arms)
            if abs(total - 100) > 1e-9:
                message = f"the split's shares add up to {total:g}%, not 100%"
                span = _keyword(split.span, "split")
                yield _error("split-total", span, message, "make the shares add up to 100%")
            for word, first in _repeats(a.label for a in split.arms if a.label is not None):
                message = f'two arms of this split are labelled "{word.value}"'
                hint = f"the first is on line {first.span.line}; give each arm its own label"
                yield _error("duplicate-split-label", word.span, message, hint)


# ---------------------------------------------------------------- scoring, routing, fields


def check_scoring(ctx: Context) -> Iterator[Diagnostic]:
    for scoring in ctx.program.scorings():
        for rule in scoring.interest:
            if not rule.is_event and rule.activity.value not in voc.INTEREST_ACTIVITIES:
                known = voc.INTEREST_ACTIVITIES
                otherwise = f'use {_one_of(known)}, or event "name"'
                yield _unknown("unknown-activity", "activity", rule.activity, known, otherwise)
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


def check_routing(ctx: Context) -> Iterator[Diagnostic]:
    for routing in ctx.program.routings():
        for sla in routing.sla:
            if sla.action.value not in voc.SLA_ACTIONS:
                yield _unknown("unknown-sla-action", "action", sla.action, voc.SLA_ACTIONS)


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


CHECKS: tuple[Check, ...] = (
    check_duplicate_items,
    check_settings,
    check_empty_names,
    check_channels,
    check_templates,
    check_subjects,
    check_condition_fields,
    check_comparisons,
    check_durations,
    check_wait_until,
    check_windows,
    check_caps,
    check_over_cap,
    check_enrollment,
    check_triggers,
    check_messages,
    check_engagement_order,
    check_unreachable,
    check_loops,
    check_lifetime,
    check_splits,
    check_scoring,
    check_routing,
    check_field_decls,
)
"""Every check, in the order they run; `run_checks` collects what each yields."""
