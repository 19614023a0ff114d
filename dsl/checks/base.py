"""What every check shares: the `Context` it reads and the helpers that word its diagnostics."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from dsl import ast
from dsl import vocabulary as voc
from dsl.errors import ERROR, WARNING, Diagnostic
from dsl.templates import TemplateSource


@dataclass(frozen=True, slots=True)
class Context:
    """What every check reads."""

    program: ast.Program
    """All modules, checked together."""
    templates: TemplateSource | None
    """Where templates are looked up; None skips the checks that read template files."""
    fields: Mapping[str, str]
    """Known lead fields and their types: the standard ones and the declared ones."""


Check = Callable[[Context], Iterator[Diagnostic]]
_S = TypeVar("_S", bound=ast.Setting)


def _error(code: str, span: ast.Span, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(ERROR, code, span, message, hint)


def _warning(code: str, span: ast.Span, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(WARNING, code, span, message, hint)


def _one_of(words: Iterable[str]) -> str:
    items = list(words)
    return ", ".join(items[:-1]) + " or " + items[-1] if len(items) > 1 else "".join(items)


def _did_you_mean(
    word: str, known: Iterable[str], otherwise: str | None = None, form: str = "`{}`"
) -> str | None:
    """`did you mean `x`?` for the closest known word, ignoring case; else `otherwise`."""
    by_lower = {k.lower(): k for k in known}
    found = voc.suggest(word, by_lower)
    return "did you mean " + form.format(by_lower[found]) + "?" if found else otherwise


def _unknown(
    code: str, what: str, word: ast.Word, known: Iterable[str], otherwise: str | None = None
) -> Diagnostic:
    """`unknown <what> `word``, with a "did you mean" or the list of known words as hint."""
    known = list(known)
    hint = _did_you_mean(word.value, known, otherwise or f"use {_one_of(known)}")
    return _error(code, word.span, f"unknown {what} `{word.value}`", hint)


def _keyword(span: ast.Span, word: str) -> ast.Span:
    """The span of the keyword that starts a node, e.g. the `if` of a whole if-block."""
    return ast.Span(span.path, span.line, span.column, span.line, span.column + len(word))


def _repeats(words: Iterable[ast.Word]) -> Iterator[tuple[ast.Word, ast.Word]]:
    """`(word, first)` for every word whose value came before, with where it first came."""
    seen: dict[str, ast.Word] = {}
    for word in words:
        if seen.setdefault(word.value, word) is not word:
            yield word, seen[word.value]


def _settings(campaign: ast.Campaign, kind: type[_S]) -> list[_S]:
    return [s for s in campaign.settings if isinstance(s, kind)]
