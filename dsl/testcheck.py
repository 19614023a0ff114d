"""Campaign tests checked against the campaigns: messages, links, channels, campaigns.

A test that opens a message no campaign sends, or expects an owner where
there is no routing, could only fail; these checks say so with a located
diagnostic before anything runs (`nurture test`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from dsl.ast import Span
from dsl.errors import Diagnostic
from dsl.graph import CompiledProgram
from dsl.testfile import Action, CampaignTest, Expect, Setting, diagnostic

CHANNELS = ("email", "sms", "wechat", "webhook")
SETTING_WORDS = {"days": "run", "cap": "cap", "start": "start", "sales": "sales"}


def check_tests(
    tests: Sequence[CampaignTest], program: CompiledProgram, text: str
) -> list[Diagnostic]:
    """What in `tests` names something the campaigns do not have (located diagnostics)."""
    lines = text.split("\n")
    found = sorted(_problems(tests, program), key=lambda p: (p[1].line, p[1].column))
    return [diagnostic(code, span, msg, lines, hint) for code, span, msg, hint in found]


def _problems(
    tests: Sequence[CampaignTest], program: CompiledProgram
) -> Iterator[tuple[str, Span, str, str | None]]:
    templates: set[tuple[str, str]] = set()
    names: set[str] = set()
    links: set[str] = set()
    for graph in program.campaigns.values():
        for node in graph.nodes.values():
            if node.kind == "send":
                templates.add((str(node.params.get("channel")), str(node.params.get("template"))))
                if node.params.get("name"):
                    names.add(str(node.params["name"]))
            cond = node.params.get("cond")
            links.update(_links(cond))
    known = {t for _, t in templates}
    patterns = [(c, _pattern(t)) for c, t in templates if "{{" in t]

    def sent(channel: str | None, template: str | None) -> bool:
        if (channel, template) in templates:
            return True
        return any(c == channel and p.fullmatch(template or "") for c, p in patterns)

    def sent_any(template: str) -> bool:
        return any(p.fullmatch(template) for _, p in patterns)

    yield from _twice([s for s in tests[0].settings if s.shared] if tests else [], "`settings`")
    for test in tests:
        yield from _twice([s for s in test.settings if not s.shared], "this test")
        yield from _leads(test)
        yield from _arrivals(test)
        yield from _after_end(test)
        for name, span in test.enters:
            if name not in program.campaigns:
                yield (
                    "test-unknown-campaign",
                    span,
                    f"no campaign named {name!r}",
                    _known(program.campaigns),
                )
        for action in test.actions:
            message = action.message
            if message is not None and message not in known | names and not sent_any(message):
                yield (
                    "test-unknown-message",
                    action.span,
                    f"no campaign sends {action.message!r}",
                    "name a template or a send's `as` name",
                )
            if action.link is not None and links and action.link not in links:
                yield (
                    "test-unknown-link",
                    action.span,
                    f"no condition asks for the link {action.link!r}",
                    _known(links),
                )
        for exp in test.expects:
            if exp.channel is not None and exp.channel not in CHANNELS:
                yield (
                    "test-unknown-channel",
                    exp.span,
                    f"no channel {exp.channel!r}",
                    _known(CHANNELS),
                )
            elif exp.kind in ("send", "no_send") and not sent(exp.channel, exp.what):
                yield (
                    "test-unknown-message",
                    exp.span,
                    f"no campaign sends {exp.channel} {exp.what!r}",
                    "check the channel and the template name",
                )
            if exp.kind == "exit" and exp.what not in program.campaigns:
                yield (
                    "test-unknown-campaign",
                    exp.span,
                    f"no campaign named {exp.what!r}",
                    _known(program.campaigns),
                )
            needs_model = exp.kind == "grade" or (exp.kind == "score" and exp.what != "score")
            if needs_model and program.scoring is None:
                yield "test-no-scoring", exp.span, "the campaigns have no scoring file", None
            elif exp.kind == "grade":
                given = _grades(program.scoring, exp.what == "fit_grade")
                if given and exp.value not in given:
                    words = ", ".join(repr(g) for g in given)
                    yield (
                        "test-value",
                        exp.span,
                        f"the scoring model gives no {exp.what} {exp.value!r}",
                        f"its grades are {words}",
                    )
            routing = program.routing or {}
            if exp.kind == "sla" and routing.get("rules") and not routing.get("sla"):
                yield "test-no-sla", exp.span, "the routing sets no SLA (`accept within ...`)", None
            if exp.kind in ("owner", "accepted", "sla") and not routing.get("rules"):
                yield (
                    "test-no-routing",
                    exp.span,
                    "the campaigns have no routing: nobody is assigned",
                    None,
                )


def _twice(settings: Sequence[Setting], where: str) -> Iterator[tuple[str, Span, str, str | None]]:
    """A setting given twice in the file's `settings`, or twice in one test."""
    first: dict[str, Setting] = {}
    for setting in settings:
        seen = first.setdefault(setting.key, setting)
        if seen is not setting:
            word = SETTING_WORDS[setting.key]
            yield (
                "test-duplicate-setting",
                setting.span,
                f"`{word}` is set twice in {where} (first on line {seen.span.line})",
                "keep one",
            )


def _leads(test: CampaignTest) -> Iterator[tuple[str, Span, str, str | None]]:
    """Leads named twice, lines about a lead that is not there, or about no lead in particular."""
    names = [line.name for line in test.leads if line.name is not None]
    seen: dict[str, int] = {}
    for line in test.leads:
        if line.name is None:
            if names:
                yield (
                    "test-lead-missing",
                    line.span,
                    "this test names its leads: say which one this line is about",
                    'one line per lead: `lead "ana" industry = "saas" tags "vip"`',
                )
            continue
        if line.name in seen:
            yield (
                "test-duplicate-lead",
                line.span,
                f"a second lead named {line.name!r} (the first is on line {seen[line.name]})",
                "one `lead` line per lead, with its fields and `tags` on it",
            )
        seen.setdefault(line.name, line.span.line)
    known = ", ".join(f'"{n}"' for n in seen)
    items: list[Action | Expect] = [*test.actions, *test.expects]
    for item in items:
        if item.lead is not None and item.lead not in seen:
            hint = f"known: {known}" if seen else 'declare it: `lead "name" field = "value"`'
            span = item.lead_span or item.span
            yield "test-unknown-lead", span, f"no lead named {item.lead!r} in this test", hint
        elif item.lead is None and len(seen) > 1:
            yield (
                "test-lead-missing",
                item.span,
                f"this test has several leads ({known}): say which one",
                'name it after `on day N` or `expect`: `expect "ana" mql on day 3`',
            )


def _arrivals(test: CampaignTest) -> Iterator[tuple[str, Span, str, str | None]]:
    """A lead arriving twice, or doing something (or expected something) before it arrives."""
    items: list[Action | Expect] = [*test.actions, *test.expects]
    for name in test.lead_names():
        arrivals = test.arrivals(name)
        who = "the lead" if name is None else repr(name)
        for extra in arrivals[1:]:
            message = f"{who} arrives twice (first on line {arrivals[0].span.line})"
            yield "test-arrival", extra.span, message, "a lead arrives once"
        if not arrivals:
            continue
        first = arrivals[0]
        for item in items:
            if item.day is None or item.kind == "arrives" or test.lead_of(item) != name:
                continue
            acts = isinstance(item, Action)
            at = (item.day, item.minute if acts else 24 * 60)
            if at < (first.day, first.minute):
                said = _moment(item.day, item.minute) if acts else f"day {item.day}"
                yield (
                    "test-arrival",
                    item.span,
                    f"{said} is before {who} arrives ({_moment(first.day, first.minute)})",
                    "a lead does nothing, and nothing holds of it, before it arrives",
                )


def _moment(day: int, minute: int | None) -> str:
    return f"day {day} at {(minute or 0) // 60:02}:{(minute or 0) % 60:02}"


def _after_end(test: CampaignTest) -> Iterator[tuple[str, Span, str, str | None]]:
    """Actions and expectations on a day the test's `run N days` does not reach."""
    if test.days is None:
        return
    last = test.days - 1
    dated: list[tuple[int | None, Span]] = [(a.day, a.span) for a in test.actions]
    dated += [(e.day, e.span) for e in test.expects]
    for day, span in dated:
        if day is not None and day > last:
            message = (
                f"day {day} is after the test's end (it runs {test.days} days: days 0 to {last})"
            )
            yield "test-after-end", span, message, f"run {day + 1} days, or more"


def _pattern(template: str) -> re.Pattern[str]:
    """`drip/tip-{{ loop.index }}` as a pattern that `drip/tip-3` matches."""
    parts = re.split(r"\{\{.*?\}\}", template)
    return re.compile(".+".join(re.escape(p) for p in parts))


def _links(cond: Any) -> Iterator[str]:
    if isinstance(cond, dict):
        if cond.get("link"):
            yield str(cond["link"])
        for arg in cond.get("args") or ():
            yield from _links(arg)
        if "arg" in cond:
            yield from _links(cond["arg"])


def _known(names: Any) -> str:
    return "known: " + ", ".join(json.dumps(n, ensure_ascii=False) for n in sorted(names))


def _grades(model: Any, fit_only: bool) -> list[str]:
    """The grades the model gives: fit's (the lead's grade), else interest's."""
    grades = (model or {}).get("grades") or {}
    steps = grades.get("fit") or ([] if fit_only else grades.get("interest")) or []
    return [str(step["grade"]) for step in steps]
