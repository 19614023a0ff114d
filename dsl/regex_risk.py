"""Patterns that can take exponential time in a backtracking engine, found before they run.

Python's `re` (and PostgreSQL's engine) backtrack: `(a+)+$` against forty
`a`s and a `b` tries every way to split the `a`s among the repeats, which is
2**40 ways. The classic shapes are a repeat inside a repeat whose length can
vary, and a repeated choice whose alternatives can start alike (`(a|ab)*`).
`risk` finds both on the tree of Python's own regex parser (`re._parser`, the
parser `re.compile` uses), so what it reads is exactly what would run.
Possessive repeats and atomic groups never backtrack and are left alone.
"""

from __future__ import annotations

import importlib
from typing import Any

_parser: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

_REPEATS = (_c.MAX_REPEAT, _c.MIN_REPEAT)
_WIDE = None  # a first-character set that may overlap anything


def risk(pattern: str) -> str | None:
    """Why `pattern` can take exponential time, or None; the pattern must compile."""
    try:
        tree = _parser.parse(pattern)
    except Exception:  # a pattern that does not compile is another check's
        return None
    return _walk(list(tree), repeated=False)


def _walk(items: list[tuple[Any, Any]], repeated: bool) -> str | None:
    for op, av in items:
        found = _item(op, av, repeated)
        if found:
            return found
    return None


def _item(op: Any, av: Any, repeated: bool) -> str | None:
    if op in _REPEATS:
        low, high, body = av
        varies = low != high
        if repeated and varies and _can_repeat_text(list(body)):
            return "a repeat inside a repeat, as in `(a+)+`"
        return _walk(list(body), repeated or high > 1)
    if op is _c.SUBPATTERN:
        return _walk(list(av[3]), repeated)
    if op is _c.BRANCH:
        branches = [list(b) for b in av[1]]
        if repeated and _overlap(branches):
            return "a repeated choice whose alternatives can start alike, as in `(a|ab)*`"
        return next((f for b in branches if (f := _walk(b, repeated))), None)
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        return _walk(list(av[1]), repeated)
    if op is _c.GROUPREF_EXISTS:
        parts = [p for p in av[1:] if p is not None]
        return next((f for p in parts if (f := _walk(list(p), repeated))), None)
    return None  # literals, classes, anchors, possessive repeats and atomic groups


def _can_repeat_text(body: list[tuple[Any, Any]]) -> bool:
    """Whether the repeated part matches something non-empty (`(a?)*`'s `a` does)."""
    return any(op not in (_c.AT,) for op, _ in body)


def _overlap(branches: list[list[tuple[Any, Any]]]) -> bool:
    """Whether two alternatives can begin with the same character."""
    seen: list[set[int] | None] = []
    for branch in branches:
        first = _first(branch)
        for other in seen:
            if first is _WIDE or other is _WIDE or first & other:
                return True
        seen.append(first)
    return False


def _first(branch: list[tuple[Any, Any]]) -> set[int] | None:
    """The characters an alternative can start with, when that is plainly known."""
    if not branch:
        return _WIDE
    op, av = branch[0]
    if op is _c.LITERAL:
        return {av}
    if op is _c.SUBPATTERN:
        return _first(list(av[3]))
    if op is _c.IN:
        chars: set[int] = set()
        for kind, value in av:
            if kind is _c.LITERAL:
                chars.add(value)
            elif kind is _c.RANGE and value[1] - value[0] < 4096:
                chars.update(range(value[0], value[1] + 1))
            else:
                return _WIDE
        return chars
    return _WIDE
