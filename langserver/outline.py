"""What a file defines and names, read even when part of it does not parse.

A file that does not parse is read one top-level item at a time (an item
starts at an unindented line), and within an item the lines a syntax error
points at are blanked out and the item read again (a few times at most): a
half-typed line in the middle still leaves the rest of the file for the
outline, completion and go to definition.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

from dsl import DslSyntaxError, Span, ast, parse_module
from dsl import walk as walk

_ITEM_START = re.compile(r"[^\s#]")


_KEEP = 64
_read: OrderedDict[tuple[str, str], tuple[ast.Item, ...]] = OrderedDict()
_read_lock = threading.Lock()


def remember(text: str, path: str, found: tuple[ast.Item, ...]) -> None:
    """Keep a text's items (the last `_KEEP` texts): features ask about the same text often."""
    with _read_lock:
        _read[(path, text)] = found
        _read.move_to_end((path, text))
        while len(_read) > _KEEP:
            _read.popitem(last=False)


def items(text: str, path: str) -> tuple[ast.Item, ...]:
    """The top-level items of `text` that parse, with their real line numbers."""
    with _read_lock:
        known = _read.get((path, text))
    if known is None:
        known = _items(text, path)
        remember(text, path, known)
    return known


def _items(text: str, path: str) -> tuple[ast.Item, ...]:
    try:
        return parse_module(text, path).items
    except (DslSyntaxError, RecursionError):
        pass
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if _ITEM_START.match(line)]
    found: list[ast.Item] = []
    for start, end in pairwise([*starts, len(lines)]):
        found.extend(_item(["" for _ in range(start)] + lines[start:end], path))
    return tuple(found)


_RETRIES = 8
"""How many broken lines of one item are blanked out before the item is given up."""


def _item(lines: list[str], path: str) -> tuple[ast.Item, ...]:
    for _ in range(_RETRIES):
        try:
            return parse_module("\n".join(lines), path).items
        except DslSyntaxError as e:
            broken = {d.span.line - 1 for d in e.diagnostics} & set(range(1, len(lines)))
            if not broken or not any(lines[i].strip() for i in broken):
                return ()
            for i in broken:
                lines[i] = ""
        except RecursionError:
            return ()
    return ()


@dataclass(frozen=True, slots=True)
class Symbol:
    """One entry of the outline: a top-level item or a campaign's named message."""

    kind: str  # campaign | scoring | routing | team | segment | fields | field | member
    name: str
    span: Span
    selection: Span
    children: tuple[Symbol, ...] = ()


def symbols(found: tuple[ast.Item, ...]) -> list[Symbol]:
    """The outline of a file's items, in file order."""
    return [_symbol(item) for item in found]


def _symbol(item: ast.Item) -> Symbol:
    if isinstance(item, ast.Campaign | ast.Scoring | ast.Segment):
        return Symbol(type(item).__name__.lower(), item.name.value, item.span, item.name.span)
    if isinstance(item, ast.Team):
        members = tuple(Symbol("member", m.email.value, m.span, m.email.span) for m in item.members)
        return Symbol("team", item.name.value, item.span, item.name.span, members)
    if isinstance(item, ast.Fields):
        decls = tuple(Symbol("field", d.name.value, d.span, d.name.span) for d in item.decls)
        return Symbol("fields", "fields", item.span, _first_line(item.span), decls)
    return Symbol("routing", "routing", item.span, _first_line(item.span))


def _first_line(span: Span) -> Span:
    return Span(span.path, span.line, span.column, span.line, span.column + len("routing"))


@dataclass(frozen=True, slots=True)
class Reference:
    """A quoted name in a file that stands for something: a template, campaign, segment, team."""

    kind: str  # template | campaign | segment | team
    word: ast.Word
    channel: str | None = None


def references(found: tuple[ast.Item, ...]) -> Iterator[Reference]:
    """Every template, campaign, segment and team a file's items name."""
    program = ast.Program((ast.Module("", found),))
    for use in walk.template_uses(program):
        yield Reference("template", use.name, use.channel)
    for item in found:
        if isinstance(item, ast.Campaign):
            yield from _campaign_references(item)
        elif isinstance(item, ast.Routing):
            for rule in item.rules:
                if rule.team is not None and rule.target in ("team", "round_robin"):
                    yield Reference("team", rule.team)


def _campaign_references(campaign: ast.Campaign) -> Iterator[Reference]:
    for setting in campaign.settings:
        if isinstance(setting, ast.Trigger) and setting.kind == "segment" and setting.value:
            yield Reference("segment", setting.value)
    for stmt in walk.statements(campaign.body):
        if isinstance(stmt, ast.EnrollStmt):
            yield Reference("campaign", stmt.campaign)


def definitions(found: tuple[ast.Item, ...]) -> Iterator[tuple[str, ast.Word]]:
    """Every name a file defines, with its kind: campaign, segment, team, scoring, field."""
    for item in found:
        if isinstance(item, ast.Campaign | ast.Segment | ast.Team | ast.Scoring):
            yield type(item).__name__.lower(), item.name
        elif isinstance(item, ast.Fields):
            yield from (("field", d.name) for d in item.decls)


def contains(span: Span, line: int, column: int) -> bool:
    """Whether the 1-based (line, column) falls in `span` (its end included, for a cursor)."""
    if (line, column) < (span.line, span.column):
        return False
    return (line, column) <= (span.end_line, span.end_column)
