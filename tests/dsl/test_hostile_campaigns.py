"""Hostile edits of the example campaigns: every one gives diagnostics, never an exception.

Numbers of thousands of digits (`score +999...`, `wait 999... days`), lone
surrogates and random character flips, put anywhere in the real example
files, go through `dsl.analyze` with the examples' own templates, and a few
through the `nurture check` command line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dsl import FileTemplates, analyze
from nurture.cli import app

CAMPAIGNS = Path(__file__).resolve().parents[2] / "campaigns"
EXAMPLES = {p.name: p.read_text(encoding="utf-8") for p in sorted(CAMPAIGNS.glob("*.nurture"))}
NAMES = sorted(EXAMPLES)
HUGE = ("9" * 5000, "1" * 4301, "9" * 101, "0" * 3000 + "7")
SURROGATES = ("\udc80", "\ud800", "\udfff")


@st.composite
def hostile(draw: st.DrawFn) -> tuple[str, str]:
    """One example file with a few insertions of huge numbers, surrogates or flipped characters."""
    name = draw(st.sampled_from(NAMES))
    text = EXAMPLES[name]
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["number", "grow", "grow", "surrogate", "flip"]))
        if kind == "number":
            text = text[:at] + draw(st.sampled_from(HUGE)) + text[at:]
        elif kind == "grow":  # a number the file already has becomes huge
            numbers = [m.start() for m in re.finditer(r"\b\d+\b", text)]
            spot = numbers[at % len(numbers)]
            text = text[:spot] + draw(st.sampled_from(HUGE)) + text[spot:]
        elif kind == "surrogate":
            text = text[:at] + draw(st.sampled_from(SURROGATES)) + text[at:]
        elif at < len(text):
            text = text[:at] + chr(ord(text[at]) ^ (1 << draw(st.integers(0, 7)))) + text[at + 1 :]
    return name, text


def check(name: str, text: str) -> None:
    path = str(CAMPAIGNS / name)
    analysis = analyze({path: text}, FileTemplates())
    for d in analysis.diagnostics:
        assert d.span.line >= 1 and d.span.column >= 1
        assert d.render().startswith(f"{path}:{d.span.line}:{d.span.column}: ")
        json.dumps(d.to_json() if hasattr(d, "to_json") else d.message)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile())
def test_hostile_edits_of_the_examples_give_only_diagnostics(case: tuple[str, str]) -> None:
    check(*case)


def test_score_and_wait_of_thousands_of_digits_are_located_syntax_errors() -> None:
    # Given the welcome campaign with `score +<5000 digits>` (a VisitError before)
    text = EXAMPLES["welcome.nurture"].replace("score +10", "score +" + "9" * 5000, 1)
    # Then it is one syntax error on that line, naming the length
    analysis = analyze({"welcome.nurture": text})
    [error] = analysis.errors
    line = text.splitlines().index(next(x for x in text.splitlines() if "9" * 50 in x)) + 1
    assert (error.code, error.span.line) == ("syntax", line)
    assert "5,000 digits" in error.message
    wait = 'campaign "W"\n  enroll when lead created\n  wait ' + "9" * 5000 + " days\n"
    [error] = analyze({"w.nurture": wait}).errors
    assert (error.code, error.span.line, error.span.column) == ("syntax", 3, 8)


def test_the_command_line_reports_hostile_files(tmp_path: Path) -> None:
    # Given copies of the examples, each made hostile in a different way, beside the templates
    (tmp_path / "templates").symlink_to(CAMPAIGNS / "templates")
    welcome = EXAMPLES["welcome.nurture"]
    edits = {
        "score.nurture": welcome.replace("score +10", "score +" + "9" * 5000, 1),
        "repeat.nurture": EXAMPLES["drip.nurture"].replace(" times", "0" * 4400 + " times", 1),
        "surrogate.nurture": welcome.replace('"Welcome', '"Wel\udc80come', 1),
    }
    expected = {"score.nurture": 1, "repeat.nurture": 1, "surrogate.nurture": 2}
    for name, text in edits.items():
        (tmp_path / name).write_text(text, encoding="utf-8", errors="surrogateescape")
    # When `nurture check` reads each, as text and as JSON
    for name in edits:
        for extra in ([], ["--format", "json"]):
            result = CliRunner().invoke(app, ["check", str(tmp_path / name), *extra])
            # Then the answer is diagnostics and exit 1 (a file that is not UTF-8: exit 2)
            assert result.exit_code == expected[name], (name, result.output, result.exception)
            assert isinstance(result.exception, SystemExit | None)
            assert "digits" in result.output or "not UTF-8 text" in result.output
