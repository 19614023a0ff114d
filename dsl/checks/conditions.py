"""Conditions: unknown lead fields, comparisons of mismatched types, regexes, stages and grades."""

from __future__ import annotations

import re
from collections.abc import Iterator

from dsl import ast, regex_risk, walk
from dsl import vocabulary as voc
from dsl.checks.base import Context, _did_you_mean, _error, _one_of, _unknown
from dsl.errors import Diagnostic


def check_condition_fields(ctx: Context) -> Iterator[Diagnostic]:
    for cond in walk.all_conditions(ctx.program):
        if isinstance(cond, ast.Compare) and cond.subject.field is not None:
            field, span = cond.subject.field, cond.subject.span
        elif isinstance(cond, ast.Truthy):
            field, span = cond.field, cond.span
        else:
            continue
        if field not in ctx.fields:
            yield _error(
                "unknown-field", span, f"unknown lead field `lead.{field}`", field_hint(ctx, field)
            )


def field_hint(ctx: Context, field: str) -> str | None:
    """What to write instead of an unknown `lead.<field>`."""
    if field.startswith("account."):
        known = [f"`lead.account.{name}`" for name in voc.ACCOUNT_FIELDS]
        return f"a lead's account has {', '.join(known[:-1])} and {known[-1]}"
    return _did_you_mean(field, ctx.fields, "declare it in a `fields` block", "`lead.{}`")


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
        return
    why = regex_risk.risk(str(value.value))
    if why is not None:
        message = f"this pattern can take exponential time on some texts: {why}"
        hint = "repeat one part (`a+`, `[ab]+`), not a group that repeats inside or starts alike"
        yield _error("slow-regex", value.span, message, hint)


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


def _stage_or_grade(kind: str, value: ast.Value) -> Iterator[Diagnostic]:
    known = voc.STAGES if kind == "stage" else voc.GRADES
    if value.kind == "number":
        hint = f"{kind}s are {_one_of(known)}"
        yield _error("type-mismatch", value.span, f"a {kind} is compared with a number", hint)
    elif value.value not in known:
        word = ast.Word(str(value.value), value.span)
        yield _unknown(f"unknown-{kind}", kind, word, known, f"{kind}s are {_one_of(known)}")


MAX_TERMS = 100
"""Comparisons one condition (a segment: all its lines) may join with `and`, `or` and `not`."""


def check_condition_size(ctx: Context) -> Iterator[Diagnostic]:
    for item in ctx.program.items():
        conds = list(walk.item_conditions(item))
        groups = [conds] if isinstance(item, ast.Segment) else [[c] for c in conds]
        for group in groups:
            terms = sum(
                not isinstance(c, ast.And | ast.Or | ast.Not)
                for cond in group
                for c in walk.subconditions(cond)
            )
            if terms > MAX_TERMS and group:
                message = f"this condition joins {terms} comparisons, more than {MAX_TERMS}"
                hint = 'compare with a list (`lead.region in ["a", "b"]`), or split it up'
                yield _error("large-condition", group[0].span, message, hint)
