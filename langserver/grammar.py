"""What the grammar expects next: the terminals an LALR parser accepts after a prefix.

Completion asks the grammar itself (`dsl/nurture.lark`, read as data), so a
construct added to the language is offered without a change here. The
prefix is lexed with Lark's basic lexer and indented with Lark's `Indenter`
(`indented`, which `langserver.layout` uses too),
stopping before the dedents the end of the text would add: the cursor is
still inside its blocks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from lark import Lark, Token
from lark.exceptions import LarkError
from lark.indenter import Indenter
from lark.lexer import PatternStr

_LAYOUT = frozenset({"_NL", "_INDENT", "_DEDENT"})


class _Indenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]  # noqa: RUF012 - names fixed by Lark
    CLOSE_PAREN_types = ["RPAR", "RSQB"]  # noqa: RUF012
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8


@dataclass(frozen=True, slots=True)
class Expected:
    """After a prefix: the terminal names that may come next and the tokens read so far."""

    terminals: frozenset[str]
    tokens: tuple[Token, ...]

    def words(self) -> list[str]:
        """The keywords among the terminals, as written."""
        keywords = grammar().keywords
        return sorted(keywords[t] for t in self.terminals if t in keywords)

    def last(self, back: int = 1) -> str:
        """The type of the token `back` places from the end ("" before the start)."""
        return self.tokens[-back].type if len(self.tokens) >= back else ""


class Grammar:
    """The language's grammar as Lark reads it; one parse at a time."""

    def __init__(self) -> None:
        text = resources.files("dsl").joinpath("nurture.lark").read_text(encoding="utf-8")
        self.lark = Lark(text, parser="lalr", lexer="basic", maybe_placeholders=False)
        self.keywords: dict[str, str] = {
            t.name: t.pattern.value
            for t in self.lark.terminals
            if isinstance(t.pattern, PatternStr) and t.pattern.value.isalpha()
        }
        self.words = frozenset(self.keywords.values())
        self.lock = threading.Lock()

    def expected(self, prefix: str) -> Expected | None:
        """What may follow `prefix`, or None when the prefix itself does not parse."""
        with self.lock:
            try:
                return self._expected(prefix)
            except (LarkError, ValueError):
                return None

    def _expected(self, prefix: str) -> Expected:
        parser: Any = self.lark.parse_interactive("")
        fed: list[Token] = []
        for tok in indented(prefix):
            choices = parser.choices()
            if tok.type not in choices and tok.type in self.keywords and "NAME" in choices:
                tok = Token("NAME", str(tok), tok.start_pos, tok.line, tok.column)
            parser.feed_token(tok)
            if tok.type not in _LAYOUT:
                fed.append(tok)
        return Expected(frozenset(parser.accepts()), tuple(fed))


def indented(text: str, close: bool = False) -> Iterator[Token]:
    """The text's tokens with INDENT/DEDENT; the dedents that end the text only if `close`."""
    tokens = grammar().lark.lex(text, dont_ignore=False)
    done = False

    def source() -> Iterator[Token]:
        nonlocal done
        yield from tokens
        done = True

    for tok in _Indenter().process(source()):  # type: ignore[no-untyped-call]
        if done and not close:
            return
        yield tok


@cache
def grammar() -> Grammar:
    return Grammar()
