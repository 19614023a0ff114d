"""Property tests: whatever text a marketer types, the language answers with diagnostics.

Random token soups and mutations of a valid corpus must never raise anything
but a `DslError` from `build`, and `analyze` must never raise at all. When a
mutated source still checks clean, it compiles and round-trips through JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl import CompiledProgram, DslError, analyze, build

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
from corpus import campaign, corpus

SEED_SOURCE = corpus(200)
LINES = SEED_SOURCE.splitlines(keepends=True)

WORDS = (  # noqa: SIM905 - the words read better as one text
    "campaign scoring routing segment fields kind enroll when exit reenter after never window "
    "cap per end lead created tagged event inactive for send wait until tag untag score notify "
    "sales mql if elif else split repeat times opened clicked replied bounced within and or not "
    "in matches fit grade interest stage decay every assign to owner team round robin otherwise "
    "accept email sms wechat days weeks hours tuesday weekdays lead.persona lead.industry "
    "member name weight wecom phone remind before by return reasons then escalate user day "
    'as subject "x" "welcome/cxo" "{{ lead.company }}" "行业:saas" 3 50% 09:00 2026-12-01 '
    "+10 -5 >= == != < > : ( ) [ ] , - # 2.5 \\ 标签 \t"
).split(" ")

token_soup = st.lists(
    st.one_of(
        st.sampled_from(WORDS),
        st.sampled_from(["\n", "\n  ", "\n    ", "\n      ", " "]),
        st.text(max_size=3),
    ),
    max_size=60,
).map(" ".join)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A slice of the valid corpus with a few lines dropped, duplicated, re-indented or cut."""
    start = draw(st.integers(0, len(LINES) - 1))
    lines = list(LINES[start : start + draw(st.integers(1, 60))])
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "dup", "indent", "dedent", "cut", "insert"]))
        if action == "drop" and len(lines) > 1:
            del lines[i]
        elif action == "dup":
            lines.insert(i, lines[i])
        elif action == "indent":
            lines[i] = "  " + lines[i]
        elif action == "dedent":
            lines[i] = lines[i][2:]
        elif action == "cut":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        else:
            lines.insert(i, draw(st.sampled_from(WORDS)) + "\n")
    return "".join(lines)


def assert_only_diagnostics(text: str) -> None:
    analysis = analyze({"fuzz.nurture": text})
    for d in analysis.diagnostics:
        assert d.span.line >= 1 and d.span.column >= 1
        assert d.render().startswith(f"fuzz.nurture:{d.span.line}:{d.span.column}: ")
    try:
        program = build({"fuzz.nurture": text})
    except DslError as e:
        assert e.diagnostics, "a DslError always carries at least one diagnostic"
        return
    again = CompiledProgram.from_json(json.loads(json.dumps(program.to_json())))
    assert again == program


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(token_soup)
def test_token_soup_gives_only_diagnostics(text: str) -> None:
    assert_only_diagnostics(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_campaigns_give_only_diagnostics(text: str) -> None:
    assert_only_diagnostics(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_unicode_gives_only_diagnostics(text: str) -> None:
    assert_only_diagnostics(text)


def test_deep_parentheses_are_fine() -> None:
    text = 'segment "deep"\n  ' + "(" * 3000 + "score >= 1" + ")" * 3000 + "\n"
    assert not analyze({"deep.nurture": text}).diagnostics


def test_very_deep_nesting_is_a_diagnostic_not_a_crash() -> None:
    # Given a condition nested deeper than Python's recursion limit
    text = 'segment "deep"\n  ' + "not " * 5000 + "score >= 1\n"
    # Then the answer is a located diagnostic, not a RecursionError
    analysis = analyze({"deep.nurture": text})
    assert [d.code for d in analysis.errors] == ["too-deep"]
    assert_only_diagnostics(text)


def test_generated_campaigns_compile() -> None:
    program = build({"corpus.nurture": SEED_SOURCE})
    assert len(program.campaigns) >= 2
    assert campaign(0, __import__("random").Random(1)).startswith('campaign "Welcome 0"')
