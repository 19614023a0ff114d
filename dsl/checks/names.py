"""Top-level items and campaign settings: duplicates, settings below a step, empty names."""

from __future__ import annotations

from collections.abc import Iterator

from dsl import ast, walk
from dsl.checks.base import Context, _error, _keyword, _repeats
from dsl.errors import Diagnostic


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
