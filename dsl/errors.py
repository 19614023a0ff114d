"""Diagnostics and the errors that carry them.

    DslError                 Raised for any problem in campaign source.
    ├── DslSyntaxError       Raised when a file does not parse.
    └── CheckError           Raised when a program has error diagnostics.

Every diagnostic has a location and prints as `path:line:col: severity: message`,
then the source line and a caret under the column, then a hint. Errors pickle
(`__reduce__`), because workers are separate processes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dsl.ast import Span

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in the source, with where it is and how to fix it."""

    severity: str  # "error" | "warning"
    code: str
    span: Span
    message: str
    hint: str | None = None
    source_line: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def render(self) -> str:
        """`path:line:col: severity: message [code]`, the line, a caret, the hint."""
        head = (
            f"{self.span.path}:{self.span.line}:{self.span.column}: "
            f"{self.severity}: {self.message} [{self.code}]"
        )
        lines = [head]
        if self.source_line is not None:
            text = self.source_line.rstrip("\n").expandtabs(1)
            width = 1
            if self.span.end_line == self.span.line:
                width = max(1, self.span.end_column - self.span.column)
            width = min(width, max(1, len(text) - self.span.column + 1))
            lines.append(f"    {text}")
            lines.append("    " + " " * (self.span.column - 1) + "^" * width)
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.span.path,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
        }
        if self.hint:
            data["hint"] = self.hint
        return data


def sort_key(d: Diagnostic) -> tuple[str, int, int, str, str]:
    return (d.span.path, d.span.line, d.span.column, d.code, d.message)


class DslError(Exception):
    """Raised for any problem in campaign source; carries the diagnostics."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(sorted(diagnostics, key=sort_key))
        super().__init__("\n".join(d.render() for d in self.diagnostics))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.diagnostics,))


class DslSyntaxError(DslError):
    """Raised when a file does not parse."""


class CheckError(DslError):
    """Raised when a program has error diagnostics and so cannot be compiled."""
