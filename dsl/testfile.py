"""Campaign tests (`*.nurture-test`): text → tests → diagnostics against the compiled campaigns.

A test file holds optional `settings` for every test, then `test "..."`
blocks, one statement a line: the lead or leads (`lead persona = "cxo"`,
`lead "ana" industry = "saas"`), the campaigns they enter, what they do and
when (`on day 2 "ana" opens "welcome/cxo"`), and what must hold (`expect ...`).
`parse_tests` reads a file (`DslSyntaxError` with a located diagnostic when it
does not parse); `dsl.testcheck` finds what names something the campaigns
do not have. Pure: the engine runs the tests (`nurture.campaign_tests`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from typing import Any

from lark import Token, Transformer, v_args
from lark.exceptions import UnexpectedInput, VisitError

from dsl.ast import Span
from dsl.errors import DslSyntaxError
from dsl.testmodel import (
    DEFAULT_ACCEPT,
    Action,
    CampaignTest,
    Expect,
    LeadLine,
    Setting,
    with_settings,
)
from dsl.testsyntax import diagnostic, parser, syntax_diagnostic
from dsl.vocabulary import STAGES, is_zone

__all__ = [
    "SUFFIX",
    "Action",
    "CampaignTest",
    "Expect",
    "LeadLine",
    "Setting",
    "diagnostic",
    "parse_tests",
]

SUFFIX = ".nurture-test"
MAX_DAY = 3650
FIRST_START, LAST_START = date(1970, 1, 1), date(2999, 12, 31)
"""The dates a test may `start` on: its days, and the calendar's look-ahead, stay on the
calendar (a start in the year 9999 would run past its end)."""
UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
PERIODS = {"day": 86400, "days": 86400, "week": 604800, "weeks": 604800}


def _span(path: str, meta: Any) -> Span:
    return Span(path, meta.line, meta.column, meta.end_line, meta.end_column)


def _token_span(path: str, token: Token) -> Span:
    line, column = token.line or 1, token.column or 1
    return Span(path, line, column, token.end_line or line, token.end_column or column + 1)


def _text(token: Token) -> str:
    try:
        return str(json.loads(str(token), strict=False))
    except ValueError as e:
        line, column = token.line or 1, token.column or 1
        span = Span("", line, column, line, column + len(token))
        raise _Located(span, f"this text has a bad escape: {token}") from e


class _Build(Transformer[Token, Any]):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def _number(self, token: Token, meta: Any) -> int:
        value = float(token)
        if value != int(value) or value > MAX_DAY:
            raise _Located(_span(self.path, meta), f"a day is a whole number up to {MAX_DAY}")
        return int(value)

    @v_args(inline=True, meta=True)
    def text(self, meta: Any, token: Token) -> str:
        return _text(token)

    @v_args(inline=True, meta=True)
    def number(self, meta: Any, token: Token) -> float | int:
        value = float(token)
        return int(value) if value.is_integer() and "." not in token else value

    @v_args(inline=True, meta=True)
    def field(self, meta: Any, name: Token, value: Any) -> tuple[str, Any]:
        if str(name) == "time_zone" and not (isinstance(value, str) and is_zone(value)):
            raise _Located(
                _span(self.path, meta),
                f'unknown time zone {value!r}: use an IANA name such as "Asia/Shanghai"',
            )
        return (str(name), value)

    @v_args(meta=True)
    def named_lead(self, meta: Any, items: list[Any]) -> tuple[str, Any]:
        name, rest = _text(items[0]), [i for i in items[1:] if i is not None]
        fields = tuple(i for i in rest if not isinstance(i, frozenset))
        tags = next((tuple(sorted(i)) for i in rest if isinstance(i, frozenset)), ())
        return ("leads", LeadLine(_span(self.path, meta), name, fields, tags))

    @v_args(meta=True)
    def lead_tagged(self, meta: Any, items: list[Token]) -> frozenset[str]:
        return frozenset(_text(t) for t in items)

    @v_args(meta=True)
    def lead_fields(self, meta: Any, items: list[Any]) -> tuple[str, Any]:
        return ("leads", LeadLine(_span(self.path, meta), None, tuple(items)))

    @v_args(meta=True)
    def lead_tags(self, meta: Any, items: list[Token]) -> tuple[str, Any]:
        tags = tuple(_text(t) for t in items)
        return ("leads", LeadLine(_span(self.path, meta), None, (), tags))

    @v_args(meta=True)
    def enters(self, meta: Any, items: list[Token]) -> tuple[str, Any]:
        return ("enters", tuple((_text(t), _span(self.path, t)) for t in items))

    @v_args(inline=True, meta=True)
    def run_days(self, meta: Any, days: Token) -> tuple[str, Any]:
        count = self._number(days, meta)
        if count < 1:
            raise _Located(_span(self.path, meta), "a test runs at least 1 day")
        return ("setting", Setting(_span(self.path, meta), "days", count))

    @v_args(inline=True, meta=True)
    def sales_after(self, meta: Any, count: Token, unit: Token) -> tuple[str, Any]:
        if str(unit) not in UNITS:
            raise _Located(_span(self.path, meta), f"{unit!s} is not minutes, hours or days")
        seconds = float(count) * UNITS[str(unit)]
        if seconds > MAX_DAY * 86400:
            raise _Located(_span(self.path, meta), f"sales answer within {MAX_DAY} days at most")
        return ("setting", Setting(_span(self.path, meta), "sales", int(seconds)))

    @v_args(inline=True, meta=True)
    def cap(self, meta: Any, count: Token, periods: Token | None, unit: Token) -> Any:
        how_many, every = float(count), float(periods or 1)
        if str(unit) not in PERIODS:
            raise _Located(_span(self.path, meta), f"a cap is per day or per week, not {unit!s}")
        if not how_many.is_integer() or not every.is_integer() or how_many < 1 or every < 1:
            raise _Located(_span(self.path, meta), "a cap is a whole number, 1 or more, per period")
        if every * PERIODS[str(unit)] > 366 * 86400:
            raise _Located(_span(self.path, meta), "a cap's period is at most a year")
        value = (int(how_many), int(every) * PERIODS[str(unit)])
        return ("setting", Setting(_span(self.path, meta), "cap", value))

    @v_args(inline=True, meta=True)
    def start_on(self, meta: Any, day: Token) -> Any:
        try:
            value = date.fromisoformat(str(day))
        except ValueError as e:
            raise _Located(_span(self.path, meta), f"{day!s} is not a date") from e
        if not FIRST_START <= value <= LAST_START:
            raise _Located(
                _span(self.path, meta), f"a test starts between {FIRST_START} and {LAST_START}"
            )
        return ("setting", Setting(_span(self.path, meta), "start", value))

    @v_args(meta=True)
    def sales_never(self, meta: Any, items: list[Any]) -> tuple[str, Any]:
        return ("setting", Setting(_span(self.path, meta), "sales", None))

    @v_args(inline=True, meta=True)
    def at(self, meta: Any, clock: Token) -> int:
        hours, minutes = map(int, str(clock).split(":"))
        if hours > 23:
            raise _Located(_span(self.path, meta), f"{clock} is not a time of day")
        return hours * 60 + minutes

    @v_args(inline=True, meta=True)
    def action(
        self, meta: Any, day: Token, at: int | None, lead: Token | None, what: dict[str, Any]
    ) -> Any:
        minute = 12 * 60 if at is None else at
        who, at_lead = self._lead(lead)
        span, number = _span(self.path, meta), self._number(day, meta)
        return ("action", Action(span, number, minute, **what, lead=who, lead_span=at_lead))

    @v_args(inline=True, meta=True)
    def template_ref(self, meta: Any, token: Token) -> str:
        return _text(token)

    @v_args(inline=True, meta=True)
    def name_ref(self, meta: Any, token: Token) -> str:
        return str(token)

    @v_args(inline=True, meta=True)
    def opens(self, meta: Any, message: str) -> dict[str, Any]:
        return {"kind": "opened", "message": message}

    @v_args(inline=True, meta=True)
    def clicks(self, meta: Any, message: str) -> dict[str, Any]:
        return {"kind": "clicked", "message": message}

    @v_args(inline=True, meta=True)
    def clicks_link(self, meta: Any, link: Token, message: str) -> dict[str, Any]:
        return {"kind": "clicked", "message": message, "link": _text(link)}

    @v_args(inline=True, meta=True)
    def replies(self, meta: Any, message: str) -> dict[str, Any]:
        return {"kind": "replied", "message": message}

    @v_args(inline=True, meta=True)
    def event(self, meta: Any, name: Token) -> dict[str, Any]:
        return {"kind": "event", "name": _text(name)}

    @v_args(meta=True)
    def sets(self, meta: Any, items: list[tuple[str, Any]]) -> dict[str, Any]:
        return {"kind": "sets", "fields": tuple(items)}

    @v_args(inline=True, meta=True)
    def returned(self, meta: Any, reason: Token) -> dict[str, Any]:
        return {"kind": "returned", "name": _text(reason)}

    @v_args(meta=True)
    def unsubscribes(self, meta: Any, items: list[Any]) -> dict[str, Any]:
        return {"kind": "unsubscribed"}

    @v_args(meta=True)
    def arrives(self, meta: Any, items: list[Any]) -> dict[str, Any]:
        return {"kind": "arrives"}

    @v_args(inline=True, meta=True)
    def day(self, meta: Any, token: Token) -> int:
        return self._number(token, meta)

    by_day = day

    @v_args(inline=True, meta=True)
    def expect(self, meta: Any, lead: Token | None, what: dict[str, Any]) -> Any:
        who, at_lead = self._lead(lead)
        return ("expect", Expect(_span(self.path, meta), **what, lead=who, lead_span=at_lead))

    def _lead(self, token: Token | None) -> tuple[str | None, Span | None]:
        """A lead's name in an action or expectation, and where it is written."""
        if token is None:
            return None, None
        return _text(token), _token_span(self.path, token)

    @v_args(inline=True, meta=True)
    def send(
        self, meta: Any, channel: Token, template: Token, day: int | None, at: int | None
    ) -> Any:
        what = _text(template)
        return {"kind": "send", "channel": str(channel), "what": what, "day": day, "minute": at}

    @v_args(inline=True, meta=True)
    def no_send(self, meta: Any, channel: Token, template: Token) -> Any:
        return {"kind": "no_send", "channel": str(channel), "what": _text(template)}

    @v_args(inline=True, meta=True)
    def tagged(self, meta: Any, tag: Token, day: int | None) -> Any:
        return {"kind": "tagged", "what": _text(tag), "day": day}

    @v_args(inline=True, meta=True)
    def not_tagged(self, meta: Any, tag: Token, day: int | None) -> Any:
        return {"kind": "not_tagged", "what": _text(tag), "day": day}

    @v_args(inline=True, meta=True)
    def score(self, meta: Any, which: Token, cmp: Token, value: Token, day: int) -> Any:
        return {
            "kind": "score",
            "what": str(which),
            "cmp": str(cmp),
            "value": float(value),
            "day": day,
        }

    @v_args(inline=True, meta=True)
    def grade(self, meta: Any, which: Token, value: Token, day: int) -> Any:
        return {"kind": "grade", "what": str(which), "value": _text(value), "day": day}

    @v_args(inline=True, meta=True)
    def stage(self, meta: Any, stage: Token, day: int) -> Any:
        if str(stage) not in STAGES:
            words = ", ".join(STAGES)
            raise _Located(_span(self.path, stage), f"no stage {stage!s}: a stage is {words}")
        return {"kind": "stage", "value": str(stage), "day": day}

    @v_args(inline=True, meta=True)
    def mql(self, meta: Any, day: int) -> Any:
        return {"kind": "mql", "day": day}

    @v_args(meta=True)
    def no_mql(self, meta: Any, items: list[Any]) -> Any:
        return {"kind": "no_mql"}

    @v_args(inline=True, meta=True)
    def exit(self, meta: Any, campaign: Token, reason: Token, day: int | None) -> Any:
        return {"kind": "exit", "what": _text(campaign), "value": _text(reason), "day": day}

    @v_args(inline=True, meta=True)
    def owner(self, meta: Any, owner: Token, day: int | None) -> Any:
        return {"kind": "owner", "value": _text(owner), "day": day}

    @v_args(inline=True, meta=True)
    def accepted(self, meta: Any, owner: Token, day: int | None) -> Any:
        return {"kind": "accepted", "value": _text(owner), "day": day}

    @v_args(inline=True, meta=True)
    def sla(self, meta: Any, outcome: Token) -> Any:
        return {"kind": "sla", "value": str(outcome)}

    @v_args(meta=True)
    def settings(self, meta: Any, items: list[tuple[str, Setting]]) -> list[Setting]:
        return [replace(setting, shared=True) for _, setting in items]

    @v_args(meta=True)
    def test(self, meta: Any, items: list[Any]) -> CampaignTest:
        name, body = _text(items[0]), items[1:]
        parts: dict[str, list[Any]] = {k: [] for k in ("leads", "enters", "setting")}
        parts.update(action=[], expect=[])
        for key, value in body:
            if key == "enters":
                parts[key].extend(value)
            else:
                parts[key].append(value)
        return with_settings(
            CampaignTest(
                _span(self.path, meta),
                name,
                tuple(parts["leads"]),
                tuple(parts["enters"]),
                None,
                DEFAULT_ACCEPT,
                None,
                None,
                tuple(parts["action"]),
                tuple(parts["expect"]),
                tuple(parts["setting"]),
            )
        )

    def start(self, items: list[Any]) -> tuple[CampaignTest, ...]:
        shared = [s for block in items if isinstance(block, list) for s in block]
        tests = (t for t in items if isinstance(t, CampaignTest))
        return tuple(with_settings(t, shared) for t in tests)


class _Located(Exception):
    def __init__(self, span: Span, message: str) -> None:
        super().__init__(message)
        self.span, self.message = span, message


def parse_tests(text: str, path: str = "<string>") -> tuple[CampaignTest, ...]:
    """The tests in one file; `DslSyntaxError` (one located diagnostic) when it does not parse."""
    lines = text.split("\n")
    try:
        tree = parser().parse(text + "\n")
        tests: tuple[CampaignTest, ...] = _Build(path).transform(tree)
    except UnexpectedInput as e:
        raise DslSyntaxError([syntax_diagnostic(e, path, lines)]) from e
    except VisitError as e:
        if not isinstance(e.orig_exc, _Located):
            raise
        found = e.orig_exc
        found.span = replace(found.span, path=path)
        raise DslSyntaxError([diagnostic("test-value", found.span, found.message, lines)]) from e
    if not tests:
        span = Span(path, 1, 1, 1, 2)
        raise DslSyntaxError([diagnostic("test-empty", span, "no `test` in this file", lines)])
    return tests
