"""Where a segment's condition comes from: a ``--where`` expression, checked like a campaign.

The expression is wrapped into a segment of its own, ``segment "--where"``
with the expression indented below it (each line a condition, all of which
must hold, as in any segment), and checked together with the project's
files, whose ``fields`` block declares the custom fields it may name. Its
diagnostics are then moved back onto the expression: ``--where:1:9`` is
line 1, column 9 of what the user typed, shown with a caret under it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Final

from dsl import Diagnostic, Span, analyze, compile_program
from dsl.graph import Json

WHERE: Final = "--where"
"""The path and the segment name the expression is checked under."""
INDENT: Final = "  "


class WhereError(Exception):
    """Raised when a ``--where`` expression, or a file it is checked with, has errors.

    `diagnostics` are every diagnostic found, the expression's located on it.
    """

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics))

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.diagnostics,))


def wrap(expression: str) -> str:
    """The expression as the source of ``segment "--where"``."""
    lines = expression.split("\n")
    return f'segment "{WHERE}"\n' + "".join(f"{INDENT}{line}\n" for line in lines)


def fields_source(fields: Mapping[str, str]) -> str:
    """A ``fields`` block declaring `fields` ({name: type}), for checking against deployed ones."""
    if not fields:
        return ""
    return "fields\n" + "".join(f"{INDENT}{name} {kind}\n" for name, kind in fields.items())


def parse_where(
    expression: str, sources: Mapping[str, str] | None = None
) -> tuple[Json, tuple[Diagnostic, ...]]:
    """The expression's condition JSON and its warnings; `WhereError` on any error.

    `sources` are the project's files ({path: text}), checked with it.
    """
    lines = expression.split("\n")
    analysis = analyze({**(sources or {}), WHERE: wrap(expression)})
    found = tuple(locate(d, lines) if d.span.path == WHERE else d for d in analysis.diagnostics)
    if analysis.program is None or analysis.errors:
        raise WhereError(found)
    compiled = compile_program(analysis.program)
    return compiled.segments[WHERE], found


def locate(diagnostic: Diagnostic, lines: Sequence[str]) -> Diagnostic:
    """A diagnostic of the wrapped source, moved onto the expression's own lines and columns."""
    span = diagnostic.span
    if span.line < 2:
        at = Span(WHERE, 1, 1, 1, 2)
        return replace(diagnostic, span=at, source_line=lines[0] if lines else "")
    line = min(span.line - 1, len(lines))
    end_line = min(max(span.end_line - 1, line), len(lines))
    column = max(1, span.column - len(INDENT))
    end_column = max(column + 1, span.end_column - len(INDENT))
    if end_line != span.end_line - 1:
        end_line, end_column = line, column + 1
    at = Span(WHERE, line, column, end_line, end_column)
    return replace(diagnostic, span=at, source_line=lines[line - 1])
