"""Bad input never crashes the language server's functions: fuzzed text, positions and edits."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from langserver import complete, definition, folder, hover, items, symbols
from langserver.grammar import grammar

PIECES = [
    *sorted(grammar().words),
    '"welcome/hello"',
    '"',
    "lead.",
    "lead.industry",
    "3 days",
    "09:00-18:00",
    ":",
    "(",
    "[",
    "+10",
    "50%",
    "\n",
    "\n  ",
    "\n    ",
    "\t",
    "\r\n",
    "#",
    "华东",
    "\x00",
    "🙂",
    "==",
    ">=",
    ",",
]

texts = st.lists(st.sampled_from(PIECES), max_size=60).map(" ".join)


@settings(max_examples=100, deadline=None)
@given(text=texts, line=st.integers(-1, 30), column=st.integers(-1, 80))
def test_every_feature_answers_on_any_text(text: str, line: int, column: int) -> None:
    path = str(Path("/nonexistent/campaigns/fuzz.nurture"))
    files = {path: text}
    names = folder.names(files)
    assert isinstance(complete(path, text, line, column, names), list)
    hover(path, text, line, column, names)
    definition(path, text, line, column, names)
    symbols(items(text, path))
    analysis = folder.check(path, files)
    assert all(d.span.path == path for d in analysis.diagnostics)


@settings(max_examples=40, deadline=None)
@given(
    base=texts,
    edits=st.lists(
        st.tuples(st.integers(0, 400), st.integers(0, 20), st.sampled_from(PIECES)), max_size=12
    ),
)
def test_a_sequence_of_edits_keeps_every_feature_answering(
    base: str, edits: list[tuple[int, int, str]]
) -> None:
    path = "untitled:fuzz"
    text = base
    for at, cut, typed in edits:
        at = min(at, len(text))
        text = text[:at] + typed + text[at + cut :]
        names = folder.names({path: text})
        last = text.count("\n")
        complete(path, text, last, len(text.split("\n")[-1]), names)
        hover(path, text, 0, 0, names)
        folder.check(path, {path: text})
