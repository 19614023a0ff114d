"""Flow: enrollment, triggers, named messages, engagement order, reachability, loops, splits."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping

from dsl import ast, walk
from dsl.checks.base import Context, _did_you_mean, _error, _keyword, _repeats, _settings, _warning
from dsl.errors import Diagnostic

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


# ---------------------------------------------------------------- order, exits, loops, splits


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
