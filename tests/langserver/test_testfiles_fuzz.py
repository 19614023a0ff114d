"""Half-typed campaign test files: the language server's functions answer, never raise."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from langserver import testfiles

SAMPLE = (Path(__file__).parents[2] / "campaigns" / "tests" / "sales-desk.nurture-test").read_text(
    encoding="utf-8"
)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(SAMPLE)), st.integers(0, 6), st.text(max_size=5), st.data())
def test_half_typed_test_files_never_break_the_features(
    at: int, cut: int, put: str, data: st.DataObject
) -> None:
    text = SAMPLE[:at] + put + SAMPLE[at + cut :]
    lines = text.split("\n")
    line = data.draw(st.integers(0, len(lines) - 1))
    column = data.draw(st.integers(0, len(lines[line])))
    start, end, words = testfiles.keywords(text, line, column)
    assert start <= column <= end and all(w.isidentifier() for w in words)
    assert all(s.selection.line >= 1 for s in testfiles.symbols(text, "t.nurture-test"))
    assert all(d.span.line >= 1 for d in testfiles.diagnose("t.nurture-test", text, {}))
