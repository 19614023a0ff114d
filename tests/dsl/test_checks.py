"""The checker: golden diagnostics for every code, a clean reference program, edge cases.

Each `tests/fixtures/diagnostics/<code>[--<variant>].nurture` starts with a
`# title` line; its sibling `.expected` holds the exact rendered diagnostics.
Regenerate them with `NURTURE_UPDATE_GOLDEN=1 pytest tests/dsl/test_checks.py`,
then read every changed file before committing it.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl import ast
from dsl.checks import CHECKS, CODES, Context, run_checks
from dsl.errors import Diagnostic, sort_key
from dsl.pipeline import Analysis, analyze
from dsl.syntax import parse_module
from dsl.templates import DictTemplates, FileTemplates
from dsl.walk import expand_name

FIXTURES = Path(__file__).parent.parent / "fixtures"
DIAGNOSTICS = FIXTURES / "diagnostics"
TEMPLATES = DIAGNOSTICS / "templates"
UPDATE = os.environ.get("NURTURE_UPDATE_GOLDEN") == "1"


def golden_fixtures() -> list[Path]:
    return sorted(DIAGNOSTICS.glob("*.nurture"))


def render(analysis: Analysis) -> str:
    """The diagnostics as `nurture check` prints them; ties in place and code by message."""
    found = sorted(analysis.diagnostics, key=lambda d: (*sort_key(d), d.message))
    return "\n\n".join(d.render() for d in found) + "\n"


@pytest.fixture
def in_fixture_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the fixture folder, so paths read `x.nurture` and `templates/...`."""
    monkeypatch.chdir(DIAGNOSTICS)


@pytest.mark.usefixtures("in_fixture_dir")
@pytest.mark.parametrize("source", golden_fixtures(), ids=lambda p: p.stem)
def test_golden_diagnostics(source: Path) -> None:
    # Given a fixture with a title and its expected diagnostics
    text = source.read_text(encoding="utf-8")
    assert text.startswith("# "), f"{source.name} must start with a `# title` line"
    expected_file = source.with_suffix(".expected")

    # When it is analysed with the templates beside it
    actual = render(analyze({source.name: text}, FileTemplates()))

    # Then the diagnostics are exactly the expected ones
    if UPDATE:
        expected_file.write_text(actual, encoding="utf-8")
    assert actual == expected_file.read_text(encoding="utf-8")


def test_every_code_has_a_golden_fixture() -> None:
    covered: dict[str, list[Path]] = {}
    for source in golden_fixtures():
        covered.setdefault(source.stem.split("--")[0], []).append(source)
    assert set(covered) - {"syntax"} <= set(CODES), "fixtures named after no known code"
    for code in CODES:
        assert code in covered, f"no fixture for {code}"
        texts = [p.with_suffix(".expected").read_text(encoding="utf-8") for p in covered[code]]
        assert any(f"[{code}]" in text for text in texts), f"no fixture shows [{code}]"


def test_codes_are_slugs_with_one_line_descriptions() -> None:
    for code, description in CODES.items():
        assert code == code.lower() and " " not in code
        assert description.endswith(".") and "\n" not in description


def test_checks_are_plain_functions_listed_once() -> None:
    assert len(set(CHECKS)) == len(CHECKS)
    assert all(check.__name__.startswith("check_") for check in CHECKS)


def test_clean_reference_program_has_no_diagnostics() -> None:
    # Given the reference program that uses every construct of the language
    source = FIXTURES / "clean.nurture"

    # When it is analysed with its templates
    templates = FileTemplates((TEMPLATES,))
    analysis = analyze({str(source): source.read_text(encoding="utf-8")}, templates)

    # Then nothing is reported
    assert render(analysis) == "\n"
    assert analysis.program is not None


# ---------------------------------------------------------------- behaviour beyond the goldens


def check(sources: dict[str, str], templates: dict[str, str] | None = None) -> list[Diagnostic]:
    analysis = analyze(sources, None if templates is None else DictTemplates(templates))
    return list(analysis.diagnostics)


def codes(found: list[Diagnostic]) -> list[str]:
    return [d.code for d in found]


def test_duplicate_campaign_across_files_points_at_the_second_file() -> None:
    # Given one campaign name in two files
    first = 'campaign "Welcome"\n  enroll when lead created\n  tag "a"\n'
    second = '# other\ncampaign "Welcome"\n  enroll when lead created\n  tag "b"\n'

    # When both are checked together
    found = check({"a.nurture": first, "b.nurture": second})

    # Then the second is reported, naming the first
    assert codes(found) == ["duplicate-campaign"]
    assert found[0].span.path == "b.nurture" and found[0].span.line == 2
    assert found[0].hint is not None and "a.nurture:1" in found[0].hint


def test_enroll_may_name_a_campaign_in_another_file() -> None:
    drip = 'campaign "Drip"\n  enroll when tagged "x"\n  tag "y"\n'
    win = 'campaign "Win"\n  enroll when lead created\n  enroll "Drip"\n'
    assert check({"drip.nurture": drip, "win.nurture": win}) == []


def test_every_problem_is_reported_not_just_the_first() -> None:
    source = (
        'campaign "A"\n  enroll when lead created\n  wait 3 dayz\n'
        '  send emial "x"\n  wait until tusday 25:00\n  enroll "Nope"\n'
    )
    assert sorted(codes(check({"a.nurture": source}))) == [
        "bad-time",
        "unknown-campaign",
        "unknown-channel",
        "unknown-unit",
        "unknown-weekday",
    ]


def test_without_a_template_source_template_files_are_not_checked() -> None:
    source = 'campaign "A"\n  enroll when lead created\n  send email "nowhere"\n'
    assert check({"a.nurture": source}) == []
    assert codes(check({"a.nurture": source}, {})) == ["unknown-template"]


def test_declared_fields_join_the_standard_ones() -> None:
    # Given a declared field
    source = 'fields\n  plan text\n\nsegment "pro"\n  lead.plan == "pro" and lead.employees > 9\n'
    module = parse_module(source, "f.nurture")

    # When the checks run
    found = run_checks(ast.Program((module,)))

    # Then it is known, and so are the standard fields
    assert found == []


def test_context_carries_program_templates_and_fields() -> None:
    program = ast.Program((parse_module("fields\n  plan text\n", "f.nurture"),))
    ctx = Context(program, None, {"plan": "text"})
    assert ctx.fields["plan"] == "text"
    assert all(list(each(ctx)) == [] for each in CHECKS)


@pytest.mark.parametrize(
    ("name", "loop", "expected"),
    [
        pytest.param("welcome/cxo", None, ("welcome/cxo",), id="plain"),
        pytest.param("tip-{{ loop.index }}", 3, ("tip-1", "tip-2", "tip-3"), id="index"),
        pytest.param("tip-{{ loop.index0 }}", 2, ("tip-0", "tip-1"), id="index0"),
        pytest.param("tip-{{ loop.index }}", None, None, id="outside-repeat"),
        pytest.param("tip-{{ lead.persona }}", 3, None, id="other-variable"),
        pytest.param("tip-{{ loop.index * 2 }}", 3, None, id="arithmetic"),
        pytest.param("tip-{{ loop }}", 3, None, id="bare-loop"),
        pytest.param("tip-{{ loop.index ", 3, None, id="broken"),
    ],
)
def test_expand_name(name: str, loop: int | None, expected: tuple[str, ...] | None) -> None:
    assert expand_name(name, loop) == expected


def test_expansion_checks_the_innermost_repeat() -> None:
    source = (
        'campaign "A"\n  enroll when lead created\n  repeat 2 times:\n    repeat 3 times:\n'
        '      send sms "t{{ loop.index }}"\n      wait 1 day\n    wait 1 week\n'
    )
    templates = {"t1.sms": "a", "t2.sms": "b"}
    found = check({"a.nurture": source}, templates)
    assert codes(found) == ["unknown-template"]
    assert "t3" in found[0].message


def test_exit_when_may_name_any_send_of_the_campaign() -> None:
    source = (
        'campaign "A"\n  enroll when lead created\n  exit when clicked offer\n'
        '  send email "x" subject "s"\n  wait 1 day\n  send email "y" subject "s" as offer\n'
    )
    assert check({"a.nurture": source}) == []


@pytest.mark.parametrize(
    "body",
    [
        # a send on every path before the check
        '  if lead.persona == "cxo":\n    send sms "a"\n  else:\n    send sms "b"\n'
        '  if opened within 1 day:\n    tag "x"\n',
        # the path without a send has exited
        '  if lead.persona == "cxo":\n    send sms "a"\n  else:\n    exit\n'
        '  if replied within 1 day:\n    tag "x"\n',
        # the check is inside a branch that sent
        '  split:\n    50%:\n      send sms "a"\n      if bounced:\n        tag "x"\n'
        '    50%:\n      tag "y"\n',
    ],
    ids=["both-branches-send", "other-branch-exits", "inside-split-arm"],
)
def test_engagement_after_a_send_on_every_path_is_fine(body: str) -> None:
    source = 'campaign "A"\n  enroll when lead created\n' + body
    assert check({"a.nurture": source}) == []


def test_engagement_inside_not_and_or_is_found() -> None:
    source = (
        'campaign "A"\n  enroll when lead created\n'
        '  if lead.persona == "x" or not (clicked "l" within 2 days and tagged "t"):\n    tag "x"\n'
    )
    found = check({"a.nurture": source})
    assert codes(found) == ["engagement-before-send"]
    assert found[0].span.column == source.splitlines()[2].index("clicked") + 1


def test_unreachable_is_reported_inside_nested_blocks_once() -> None:
    source = (
        'campaign "A"\n  enroll when lead created\n  repeat 2 times:\n    if tagged "x":\n'
        '      exit\n      tag "y"\n      tag "z"\n    wait 1 day\n'
    )
    found = check({"a.nurture": source})
    assert [(d.code, d.span.line) for d in found] == [("unreachable", 6)]


def test_an_if_without_else_does_not_end_every_path() -> None:
    source = (
        'campaign "A"\n  enroll when lead created\n  if tagged "x":\n    exit\n'
        '  elif tagged "y":\n    exit\n  tag "z"\n'
    )
    assert check({"a.nurture": source}) == []


def test_over_cap_counts_minimum_time_through_within_branches() -> None:
    # Given sends that are at least 3 days apart only on the "not opened" path
    source = (
        'campaign "A"\n  enroll when lead created\n  cap 2 per week\n'
        '  send sms "a"\n  if opened within 3 days:\n    send sms "b"\n  else:\n    send sms "c"\n'
        '  send sms "d"\n'
    )
    found = check({"a.nurture": source})

    # Then the yes-branch (no time passes) crowds the week; reported at the third send
    assert codes(found) == ["over-cap"]
    assert found[0].span.line == 9
    assert found[0].message.startswith("up to 3 touches in 7 days")


def test_over_cap_is_quiet_when_waits_spread_the_sends() -> None:
    source = (
        'campaign "A"\n  enroll when lead created\n  cap 1 per week\n  cap 1 per day\n'
        '  repeat 10 times:\n    send sms "a"\n    wait 1 week\n'
    )
    assert check({"a.nurture": source}) == []


def test_over_cap_gives_up_quietly_on_too_many_paths() -> None:
    # Given 40 independent branches, far more paths than the checker follows
    branch = '  if tagged "t":\n    wait 1 hour\n  else:\n    wait 2 hours\n  send sms "a"\n'
    source = 'campaign "A"\n  enroll when lead created\n  cap 1000 per week\n' + branch * 40
    assert check({"a.nurture": source}) == []


def test_a_huge_repeat_is_checked_quickly() -> None:
    source = (
        'campaign "A"\n  enroll when lead created\n  cap 3 per week\n'
        '  repeat 100000000 times:\n    send sms "a{{ loop.index }}"\n    wait 1 day\n'
    )
    found = check({"a.nurture": source}, {f"a{i}.sms": "x" for i in range(1, 501)})
    assert "over-cap" in codes(found)


# ---------------------------------------------------------------- robustness

LINES = (FIXTURES / "clean.nurture").read_text(encoding="utf-8").splitlines()
WORDS = [
    "0", "99999", "days", "dayz", "weeks", "mon", "fridy", "25:00", "00:00", "2026-02-30",
    "A", "Z", "sql", "mql", "freemail", "true", "lead.nope", '"x"', '""', "exit", "else:",
    "{{ loop.index }}", "-", "50%", "0%", "per", "within 0 days", "as a",
]  # fmt: skip


@st.composite
def mutated_sources(draw: st.DrawFn) -> str:
    """The clean program with lines dropped, repeated, moved and words replaced."""
    lines = list(LINES)
    for _ in range(draw(st.integers(0, 8))):
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "copy", "move", "word"]))
        if action == "drop":
            del lines[i]
        elif action == "copy":
            lines.insert(draw(st.integers(0, len(lines))), lines[i])
        elif action == "move":
            lines.insert(draw(st.integers(0, len(lines))), lines.pop(i))
        else:
            words = lines[i].split(" ")
            j = draw(st.integers(0, len(words) - 1))
            words[j] = draw(st.sampled_from(WORDS))
            lines[i] = " ".join(words)
        if not lines:
            break
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_sources())
def test_checks_never_raise_on_anything_that_parses(source: str) -> None:
    templates = FileTemplates((TEMPLATES,))
    analysis = analyze({"clean.nurture": source}, templates)
    assert all(d.code in CODES or d.code in ("syntax", "too-deep") for d in analysis.diagnostics)


def test_a_template_computing_gigabytes_is_reported_without_computing_it() -> None:
    # Given templates whose constant expressions would take seconds and gigabytes to fold
    sources = {
        "c.nurture": 'campaign "C"\n  enroll when lead created\n  send sms "big"\n'
        '  send sms "pow"\n  send sms "wide"\n'
    }
    templates = {
        "big.sms": "{{ 'a' * 10**10 }}",
        "pow.sms": "{{ (9 ** (9 ** 8)) % 7 }}",
        "wide.sms": "{% autoescape 'a' | center(999999999) %}{% endautoescape %}",
    }
    # When they are checked, then each is a template-error, at once and in little memory
    tracemalloc.start()
    started = time.monotonic()
    found = check(sources, templates)
    elapsed, peak = time.monotonic() - started, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [d.code for d in found if d.is_error] == ["template-error"] * 3
    assert elapsed < 10 and peak < 50e6  # folding them took 27 s and 3 GB for 10**9


def test_a_number_too_long_for_python_is_a_template_error_on_its_line() -> None:
    # Given a template, and an email subject, with a literal of 5,000 digits
    sources = {
        "c.nurture": 'campaign "C"\n  enroll when lead created\n'
        f'  send email "long" subject "{{{{ {"9" * 5000} }}}}"\n'
    }
    templates = {
        "long.email": "{% block subject %}Hi{% endblock %}\nline two {{ " + "9" * 5000 + " }}"
    }

    # When they are checked
    found = [d for d in check(sources, templates) if d.is_error]

    # Then each is a template-error naming the limit (and the template's line), not a crash
    messages = sorted(d.message for d in found)
    assert [d.code for d in found] == ["template-error"] * 2
    assert messages == [
        "error in template <long.email> on line 2: a number has more than 4,300 digits",
        "error in the subject: a number has more than 4,300 digits",
    ]
