"""Formatting that cannot change meaning: indentation, trailing spaces, the last newline.

Blocks are indented two spaces a level (tabs included), a comment line takes
the indentation of the code line after it, trailing spaces go and the file
ends with one newline. Words, comments and lines inside brackets are kept
as written. A file that does not parse is left alone, and a result is only
offered when the grammar reads the same tokens and blocks from it: so it is
safe, and formatting a formatted file changes nothing.
"""

from __future__ import annotations

from lark import Token
from lark.exceptions import LarkError

from dsl import DslSyntaxError, parse_module
from langserver.grammar import indented

INDENT = "  "
_LAYOUT = frozenset({"_NL", "_INDENT", "_DEDENT"})


def format_text(text: str) -> str | None:
    """The formatted text, or None when the file does not parse or nothing would change."""
    try:
        parse_module(text)
    except (DslSyntaxError, RecursionError):
        return None
    lines = text.replace("\r\n", "\n").split("\n")
    depths = _depths(lines)
    if depths is None:
        return None
    out = [_line(line, depths.get(i)) for i, line in enumerate(lines)]
    out = _comments_follow_code(out, lines, depths)
    result = "\n".join(out).rstrip("\n") + "\n"
    if result == text or _tokens(result) != _tokens(text):
        return None
    return result


def _depths(lines: list[str]) -> dict[int, int] | None:
    """The block depth of each line that starts a statement (0-based line numbers)."""
    depths: dict[int, int] = {}
    depth, starts = 0, True  # a statement starts the text and follows each newline
    try:
        for tok in indented("\n".join(lines)):
            if tok.type in _LAYOUT:
                depth += {"_INDENT": 1, "_DEDENT": -1}.get(tok.type, 0)
                starts = True
                continue
            if starts:
                depths[(tok.line or 1) - 1] = depth
            starts = False
    except LarkError:
        return None
    return depths


def _line(line: str, depth: int | None) -> str:
    if depth is None:
        return line.rstrip()
    return INDENT * depth + line.strip()


def _comments_follow_code(out: list[str], lines: list[str], depths: dict[int, int]) -> list[str]:
    """A comment line is indented like the next statement (top level at the end)."""
    following = 0
    for i in range(len(lines) - 1, -1, -1):
        if i in depths:
            following = depths[i]
        elif lines[i].lstrip().startswith("#"):
            out[i] = INDENT * following + lines[i].strip()
    return out


def _tokens(text: str) -> list[tuple[str, str]] | None:
    try:
        found: list[Token] = list(indented(text, close=True))
    except LarkError:
        return None
    return [(t.type, "" if t.type in _LAYOUT else str(t)) for t in found]
