"""A fast lexer for nurture source, with Python-style INDENT/DEDENT built in.

It gives exactly the tokens that Lark's own lexer and `lark.indenter.Indenter`
give for the grammar in `nurture.lark`, as small tuples instead of `lark.Token`s,
but only for text that can parse: whenever it meets something Lark would report
(a character no terminal matches, a dedent to no open block, an unclosed
bracket) it raises `NotLexed` and leaves the words of the error to Lark.

How it stays equal to Lark's lexer:

* one compiled regex tokenizes the whole text (`re.split`); its branches are the
  grammar's terminals, tried in Lark's order wherever two of them can start with
  the same character, so every token ends where Lark's would;
* a token's type is found once per distinct text, by a full match against the
  grammar's own patterns in Lark's order, then keywords by value, as Lark's
  "unless" callback does (`Lexer._classes` caches the answer);
* lines and columns count only "\\n", as `lark.lexer.LineCounter` does.

The grammar's terminal patterns are checked against `_TERMINALS` when the lexer
is built, so a change to a terminal in `nurture.lark` fails loudly here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import ClassVar

from lark.lexer import PatternStr, TerminalDef


class Tok(tuple[int, int, int, int, str]):
    """`(line, column, end_line, end_column, text)`, 1-based, end exclusive.

    Every token is an instance of the subclass for its type (`tok_class`), where
    `type` is a plain class attribute: Lark's parser reads it several times per
    token, and reads nothing else.
    """

    __slots__ = ()

    type: ClassVar[str]


_TOK_CLASSES: dict[str, type[Tok]] = {}


def tok_class(kind: str) -> type[Tok]:
    """The `Tok` subclass whose `type` is `kind`."""
    cls = _TOK_CLASSES.get(kind)
    if cls is None:
        cls = _TOK_CLASSES[kind] = type(f"Tok_{kind}", (Tok,), {"__slots__": (), "type": kind})
    return cls


class NotLexed(Exception):
    """This text does not lex cleanly; Lark's own lexer will say why."""


class GrammarChanged(Exception):
    """`nurture.lark` has a terminal or rule shape the fast path was not written for."""


# name: (the grammar's pattern, an equivalent pattern that runs faster in one big regex).
# The fast forms only drop capturing groups and unroll the string loop; each matches
# the same text as the grammar's pattern at any position.
_TERMINALS = {
    "FIELD": (r"lead(\.[^\W\d]\w*)+", r"lead(?:\.[^\W\d]\w*)+"),
    "NAME": (r"[^\W\d]\w*", r"[^\W\d]\w*"),
    "STRING": ('"(\\\\.|[^"\\\\\n])*"', r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"'),
    "_NL": ("(\r?\n[\t ]*(#[^\n]*)?)+", r"(?:\r?\n[\t ]*(?:#[^\n]*)?)+"),
    "DATE": (r"\d{4}-\d{2}-\d{2}", r"\d{4}-\d{2}-\d{2}"),
    "PERCENT": (r"\d+(\.\d+)?%", r"\d+(?:\.\d+)?%"),
    "DECIMAL": (r"\d+\.\d+", r"\d+\.\d+"),
    "TIME": (r"\d{1,2}:\d{2}", r"\d{1,2}:\d{2}"),
    "INT": (r"\d+", r"\d+"),
    "COMMENT": ("#[^\n]*", "#[^\n]*"),
}
# Branches of the big regex, in this order. Only terminals that can start with the same
# character compete, and those keep Lark's order (priority, then longest first):
# FIELD before NAME; DATE, PERCENT, DECIMAL, TIME, INT; ">=" before ">" (punctuation is
# added longest first). Words, digits, quotes, newlines and "#" start no other terminal.
_ORDER = ("FIELD", "NAME", "STRING", "_NL", "DATE", "PERCENT", "DECIMAL", "TIME", "INT", "COMMENT")
_WHITESPACE = "[\t \x0c]+"  # the grammar's `%ignore /[\t \f]+/`
_NL = "_NL"
_OPEN = frozenset({"LPAR", "LSQB"})
_CLOSE = frozenset({"RPAR", "RSQB"})
_SPECIAL = frozenset({_NL, "COMMENT", *_OPEN, *_CLOSE})
_TAB_LEN = 8  # as `_Indenter.tab_len` in syntax.py
_CACHE_LIMIT = 100_000


def _order_key(t: TerminalDef) -> tuple[int, int, int, str]:
    """The order in which Lark's basic lexer tries terminals."""
    return (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name)


class Lexer:
    """Built once from the grammar's terminals; `tokens` is safe to call from any thread."""

    def __init__(self, terminals: Iterable[TerminalDef], ignore: Iterable[str]) -> None:
        terminals = list(terminals)
        ignored = set(ignore)
        regexps = {t.name: t.pattern.to_regexp() for t in terminals}
        for name, (grammar_form, _) in _TERMINALS.items():
            if regexps.get(name) != grammar_form:
                raise GrammarChanged(
                    f"terminal {name} changed in nurture.lark; update dsl/lexer.py"
                )

        # Keywords: string terminals that a pattern terminal matches whole are found by
        # value after the match, as Lark's basic lexer does (`_create_unless`).
        self.keywords: dict[str, dict[str, str]] = {}
        embedded: set[str] = set()
        for s in terminals:
            if not isinstance(s.pattern, PatternStr):
                continue
            for r in terminals:
                if isinstance(r.pattern, PatternStr) or r.priority != s.priority:
                    continue
                m = re.match(regexps[r.name], s.pattern.value)
                if m and m.group(0) == s.pattern.value:
                    self.keywords.setdefault(r.name, {})[s.pattern.value] = s.name
                    if set(s.pattern.flags) <= set(r.pattern.flags):
                        embedded.add(s.name)
        punctuation = [
            t for t in terminals if isinstance(t.pattern, PatternStr) and t.name not in embedded
        ]
        for t in punctuation:
            if re.match(r"[\w\s\"#]", t.pattern.value):
                raise GrammarChanged(f"terminal {t.name} starts like a word; update dsl/lexer.py")
        others = {t.name for t in terminals} - embedded - {t.name for t in punctuation}
        whitespace = {n for n in ignored if regexps[n] == _WHITESPACE}
        if others - whitespace != set(_ORDER) or not whitespace:
            raise GrammarChanged("the grammar's terminals changed; update dsl/lexer.py")
        lark_order = [t.name for t in sorted(terminals, key=_order_key)]
        for rivals in (["FIELD", "NAME"], ["DATE", "PERCENT", "DECIMAL", "TIME", "INT"]):
            if sorted(rivals, key=lark_order.index) != rivals:
                raise GrammarChanged("terminal priorities changed; update dsl/lexer.py")

        punctuation.sort(key=lambda t: (-len(t.pattern.value), t.name))
        branches = [_TERMINALS[n][1] for n in _ORDER]
        branches += [re.escape(t.pattern.value) for t in punctuation]
        # Whitespace before a token is captured, so that columns can be counted.
        self._split = re.compile(f"([\t \x0c]*)((?:{'|'.join(branches)}))").split

        # For the type of a token text: the grammar's own patterns in Lark's order.
        scanner = sorted((t for t in terminals if t.name not in embedded), key=_order_key)
        named = [f"(?P<{t.name}>{regexps[t.name]})" for t in scanner if t.name not in whitespace]
        self._classify = re.compile("|".join(named)).fullmatch
        self._ignored = frozenset(ignored)
        self._special = frozenset(tok_class(kind) for kind in _SPECIAL)
        self._layout = (tok_class(_NL), tok_class("_INDENT"), tok_class("_DEDENT"))
        self._classes: dict[str, type[Tok]] = {}
        self._newlines: dict[str, tuple[int, int, str, int]] = {}

    def _class(self, text: str) -> type[Tok]:
        m = self._classify(text)
        if m is None or m.lastgroup is None:  # not reachable: the split matched this text
            raise NotLexed(text)
        kind = m.lastgroup
        cls = tok_class(self.keywords.get(kind, {}).get(text, kind))
        if len(self._classes) > _CACHE_LIMIT:
            self._classes.clear()
        self._classes[text] = cls
        return cls

    def _newline(self, text: str) -> tuple[int, int, str, int]:
        """(newlines, length after the last one, that tail, its indentation width)."""
        tail = text[text.rindex("\n") + 1 :]
        info = (text.count("\n"), len(tail), tail, tail.count(" ") + tail.count("\t") * _TAB_LEN)
        if len(self._newlines) > _CACHE_LIMIT:
            self._newlines.clear()
        self._newlines[text] = info
        return info

    def tokens(self, text: str) -> list[Tok]:
        """All tokens the parser sees, `_NL`, `_INDENT` and `_DEDENT` included."""
        parts = self._split(text)
        if any(parts[::3]):  # text between two matches, or after the last: Lark's error
            raise NotLexed(text)
        classes = self._classes
        newlines = self._newlines
        special = self._special
        nl, indent_tok, dedent_tok = self._layout
        out: list[Tok] = []
        append = out.append
        line = 1
        col = 1
        levels = [0]
        parens = 0
        for ws, value in zip(parts[1::3], parts[2::3], strict=True):
            if ws:
                col += len(ws)
            cls = classes.get(value) or self._class(value)
            if cls in special:
                kind = cls.type
                if cls is nl:
                    count, width, tail, indent = newlines.get(value) or self._newline(value)
                    if not parens:
                        end = (line, col, line + count, width + 1)
                        append(nl((*end, value)))
                        if indent > levels[-1]:
                            levels.append(indent)
                            append(indent_tok((*end, tail)))
                        elif indent < levels[-1]:
                            dedent = dedent_tok((*end, tail))
                            while indent < levels[-1]:
                                levels.pop()
                                append(dedent)
                            if indent != levels[-1]:
                                raise NotLexed(text)
                    line += count
                    col = width + 1
                    continue
                if kind in self._ignored:
                    col += len(value)
                    continue
                if kind in _OPEN:
                    parens += 1
                else:
                    parens -= 1
                    if parens < 0:
                        raise NotLexed(text)
            end_col = col + len(value)
            append(cls((line, col, line, end_col, value)))
            col = end_col
        if parens or len(levels) > 1:
            raise NotLexed(text)
        return out
