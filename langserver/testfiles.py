"""Campaign test files (`*.nurture-test`) in the editor: diagnostics and keyword completion.

A test file is checked as `nurture test` checks it before running anything
(`dsl.testfile` then `dsl.testcheck`), against the `.nurture` files of its
folder or, when that has none, of the folder above, open ones as edited.
When those campaigns do not check clean (their own diagnostics say why, in
their own files), only the test file's syntax and values are checked: what
it names cannot be looked up in a broken program. The outline lists the
tests and their named leads. Completion offers the
keywords the test grammar (`dsl/nurture_test.lark`) accepts at the cursor,
reading the cursor's line alone inside its block (`test` or `settings`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark
from lark.exceptions import LarkError
from lark.lexer import PatternStr

from dsl import Diagnostic, FileTemplates, Span, analyze, compile_program
from dsl.errors import DslError
from dsl.testcheck import check_tests
from dsl.testfile import SUFFIX, parse_tests
from langserver.folder import SUFFIX as CAMPAIGN_SUFFIX
from langserver.outline import Symbol

_WORD = re.compile(r"\w*$")
_ALTERNATION = re.compile(r"\(\?:([a-z_]+(?:\|[a-z_]+)+)\)")


def is_test_file(path: str) -> bool:
    return path.endswith(SUFFIX)


def campaign_sources(path: str, open_docs: Mapping[str, str]) -> dict[str, str]:
    """The campaigns a test file runs against, open ones as edited (none for an unsaved buffer)."""
    file = Path(path)
    if not file.is_absolute():
        return {}
    for folder in (file.parent, file.parent.parent):
        try:
            found = sorted(p for p in folder.glob(f"*{CAMPAIGN_SUFFIX}") if p.is_file())
        except OSError:
            continue
        texts: dict[str, str] = {}
        for p in found:
            if str(p) in open_docs:
                texts[str(p)] = open_docs[str(p)]
                continue
            try:
                texts[str(p)] = p.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError):
                continue  # a campaign we cannot read is not this file's problem
        if texts:
            return texts
    return {}


def diagnose(
    path: str, text: str, open_docs: Mapping[str, str], roots: tuple[Path, ...] = ()
) -> tuple[Diagnostic, ...]:
    """The test file's diagnostics, as `nurture test` would print them before running it."""
    try:
        tests = parse_tests(text, path)
    except DslError as e:
        return tuple(e.diagnostics)
    campaigns = campaign_sources(path, open_docs)
    if not campaigns:
        return ()
    folder = Path(next(iter(campaigns))).parent
    templates = FileTemplates((*roots, *(p for p in (folder / "templates",) if p.is_dir())))
    analysis = analyze(campaigns, templates)
    if analysis.program is None or analysis.errors:
        return ()
    return tuple(check_tests(tests, compile_program(analysis.program), text))


def symbols(text: str, path: str) -> list[Symbol]:
    """The outline: each test, with its named leads; nothing while the file does not parse."""
    try:
        tests = parse_tests(text, path)
    except DslError:
        return []
    lines = text.split("\n")

    def line_of(span: Span) -> Span:
        end = len(lines[span.line - 1]) + 1 if span.line <= len(lines) else span.column + 1
        return Span(path, span.line, span.column, span.line, end)

    found = []
    for test in tests:
        first = line_of(test.span)
        # the block's span ends after the line break (and blank or comment lines) that close it
        last = max(first.line, min(test.span.end_line - 1, len(lines)))
        whole = Span(path, first.line, first.column, last, len(lines[last - 1]) + 1)
        leads = tuple(
            Symbol("lead", line.name, line_of(line.span), line_of(line.span))
            for line in test.leads
            if line.name is not None
        )
        found.append(Symbol("test", test.name, whole, first, leads))
    return found


class _TestGrammar:
    """The test file grammar as an LALR table, to ask what may come next; one parse at a time."""

    def __init__(self) -> None:
        text = resources.files("dsl").joinpath("nurture_test.lark").read_text(encoding="utf-8")
        self.lark = Lark(text, parser="lalr", lexer="contextual", maybe_placeholders=False)
        self.keywords: dict[str, list[str]] = {}
        for t in self.lark.terminals:
            value = t.pattern.value
            if isinstance(t.pattern, PatternStr) and value.isalpha():
                self.keywords[t.name] = [value]
            elif words := _ALTERNATION.fullmatch(value):  # SCORE: "score" | "fit" | "interest"
                self.keywords[t.name] = words.group(1).split("|")
        self.lock = threading.Lock()

    def accepts(self, prefix: str) -> frozenset[str] | None:
        with self.lock:
            try:
                parser: Any = self.lark.parse_interactive(prefix)
                parser.exhaust_lexer()  # the parser's own contextual lexer: `10:00` is a CLOCK
                return frozenset(parser.accepts())
            except (LarkError, ValueError):
                return None


@cache
def _grammar() -> _TestGrammar:
    return _TestGrammar()


def every_keyword() -> frozenset[str]:
    """Every keyword of the test grammar (the VS Code grammar colours them)."""
    return frozenset(w for words in _grammar().keywords.values() for w in words)


def keywords(text: str, line: int, column: int) -> tuple[int, int, list[str]]:
    """Where the word at (line, column), both 0-based, starts and ends, and the keywords that
    may be typed there."""
    lines = text.split("\n")
    if not 0 <= line < len(lines):
        return column, column, []
    head = lines[line][:column]
    if head.count('"') % 2 or "#" in head:
        return column, column, []  # inside a text or a comment
    word, rest = _WORD.search(head), re.match(r"\w*", lines[line][column:])
    start = column - (len(word.group()) if word else 0)
    end = column + (len(rest.group()) if rest else 0)
    above = [ln.strip() for ln in lines[:line]]
    block = next((ln for ln in reversed(above) if ln.startswith(("test ", "settings"))), "")
    context = 'test "x"\n' if block.startswith("test") else "settings\n" if block else ""
    prefix = context + head[:start]  # this line alone: a broken line above does not matter
    grammar = _grammar()
    accepts = grammar.accepts(prefix)
    if accepts is None:
        return start, end, []
    return start, end, sorted(w for t in accepts for w in grammar.keywords.get(t, ()))
