"""How a campaign test file that does not read is worded: the test grammar's parser, and
Lark's errors turned into located `test-syntax` diagnostics a marketer can act on.

Kept apart from `dsl.testfile` (which builds tests from the parse tree).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from lark import Lark
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from dsl.ast import Span
from dsl.errors import ERROR, Diagnostic

WORDS = {
    "STRING": 'a quoted text such as "welcome/cxo"',
    "NUMBER": "a number",
    "NAME": "a name",
    "_NL": "the end of the line",
    "CLOCK": "a time such as 10:00",
    "CMP": "a comparison such as >=",
    "SCORE": '"score", "fit" or "interest"',
    "GRADE": '"grade" or "fit_grade"',
    "SLA": '"met" or "missed"',
    "$END": "the end of the file",
}
"""How the expected terminals read in a message."""


@functools.cache
def parser() -> Lark:
    """The test grammar's LALR parser (built once)."""
    return Lark.open_from_package(
        "dsl", "nurture_test.lark", parser="lalr", strict=True, propagate_positions=True
    )


def diagnostic(
    code: str, span: Span, message: str, lines: Sequence[str], hint: str | None = None
) -> Diagnostic:
    source = lines[span.line - 1] if 0 < span.line <= len(lines) else None
    return Diagnostic(ERROR, code, span, message, hint, source)


def syntax_diagnostic(e: UnexpectedInput, path: str, lines: Sequence[str]) -> Diagnostic:
    line, column = max(1, e.line or 1), max(1, e.column or 1)
    if line > len(lines):
        line, column = len(lines), len(lines[-1]) + 1
    span = Span(path, line, column, line, column + 1)
    glued = _glued(lines, line, column)
    if glued is not None:
        start, word, expected = glued
        span = Span(path, line, start, line, start + len(word))
        message = f"unexpected {word!r}; expected {_wanted(expected)}"
    elif isinstance(e, UnexpectedCharacters):
        message = f"unexpected character {e.char!r}"
    elif isinstance(e, UnexpectedToken):
        got = "the end of the line" if e.token.type == "_NL" else repr(str(e.token))
        message = f"unexpected {got}; expected {_wanted(e.expected)}"
    else:
        message = "this line does not read as a test statement"
    hint = "see “Campaign tests” in docs/language.md"
    return diagnostic("test-syntax", span, message, lines, hint)


def _wanted(expected: Iterable[str]) -> str:
    wanted = sorted({WORDS.get(t) or f'"{_keyword(t)}"' for t in expected if t != "$END"})
    return ", ".join(wanted[:16]) or "nothing more"


@functools.cache
def _keyword(terminal: str) -> str:
    """A keyword's own spelling: Lark names one whose name is taken (`sla`, beside the `SLA`
    terminal) ``__ANON_0``."""
    if terminal.startswith("__"):
        found = {t.name: t.pattern for t in parser().terminals}.get(terminal)
        if found is not None and found.type == "str":
            return str(found.value)
    return terminal.lower()


def _glued(lines: Sequence[str], line: int, column: int) -> tuple[int, str, set[str]] | None:
    """When the error falls inside a word (`expect nonsense`: the lexer took `no` as the
    keyword and stumbled on `nsense`): the word's column, the word, and what the parser
    expected before it; None otherwise."""
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    at = column - 1
    if not (0 < at < len(source) and _word(source[at - 1]) and _word(source[at])):
        return None
    start, end = at, at
    while start > 0 and _word(source[start - 1]):
        start -= 1
    while end < len(source) and _word(source[end]):
        end += 1
    before = "\n".join([*lines[: line - 1], source[:start]])
    try:
        reading = parser().parse_interactive(before)
        reading.exhaust_lexer()
    except UnexpectedInput:
        return None
    return start + 1, source[start:end], set(reading.accepts())  # type: ignore[no-untyped-call]


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"
