"""`nurture test`: the example tests pass, failures are located, bad files get diagnostics."""

from __future__ import annotations

import codecs
import json
import re
import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dsl import build
from dsl.errors import DslSyntaxError
from dsl.graph import CompiledProgram
from dsl.testfile import parse_tests
from nurture.campaign_tests import diagnose, run_test
from nurture.cli import app

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGNS = ROOT / "campaigns"
runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for f in CAMPAIGNS.glob("*.nurture"):
        shutil.copy(f, tmp_path / f.name)
    shutil.copytree(CAMPAIGNS / "templates", tmp_path / "templates")
    (tmp_path / "tests").mkdir()
    return tmp_path / "tests"


def test_every_example_test_in_campaigns_passes() -> None:
    result = runner.invoke(app, ["test", str(CAMPAIGNS)])
    assert result.exit_code == 0, result.output
    assert " 0 failed" in result.output


def test_a_failing_expectation_names_its_line_and_shows_the_path(folder: Path) -> None:
    (folder / "a.nurture-test").write_text(
        'test "wrong day"\n  lead persona = "cxo"\n  expect send email "welcome/cxo" on day 3\n'
    )
    junit = folder / "out.xml"
    result = runner.invoke(app, ["test", str(folder), "--junit", str(junit)])
    assert result.exit_code == 1
    assert (
        f"{folder / 'a.nurture-test'}:3: expected send email 'welcome/cxo' on day 3"
        in result.output
    )
    assert "day 0 09:00  send email 'welcome/cxo' [Welcome]" in result.output
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"


def test_junit_is_well_formed_whatever_the_names_hold(folder: Path) -> None:
    # Given tests named with markup, quotes, CJK and control characters, and a file that
    # does not read
    (folder / "a.nurture-test").write_text(
        'test "fails <&> \\"q\\" ]]> 华"\n  lead persona = "cxo"\n'
        '  expect send email "welcome/cxo" on day 3\n\n'
        'test "ctl \x01\x1b[31m\x0b"\n  lead persona = "c\x0bxo"\n'
        '  expect no send email "welcome/cxo"\n',
        encoding="utf-8",
    )
    (folder / "b.nurture-test").write_text('test "broken"\n  expect mql on\n')
    junit = folder / "out.xml"

    # When they run with --junit
    result = runner.invoke(app, ["test", str(folder), "--junit", str(junit)])

    # Then the file parses, each suite counts its tests and failures, and the names read
    assert result.exit_code == 1
    root = ET.parse(junit).getroot()
    suites = {Path(str(s.get("name"))).name: s for s in root.iter("testsuite")}
    assert {n: (s.get("tests"), s.get("failures")) for n, s in suites.items()} == {
        "a.nurture-test": ("2", "1"),
        "b.nurture-test": ("1", "1"),
    }
    cases = [c.get("name") for c in suites["a.nurture-test"].iter("testcase")]
    assert cases == ['fails <&> "q" ]]> 华', "ctl \\x01\\x1b[31m\\x0b"]
    [failure] = suites["a.nurture-test"].iter("failure")
    assert "expected send email 'welcome/cxo' on day 3" in str(failure.get("message"))
    assert "path:\nday 0 09:00  send email 'welcome/cxo' [Welcome]" in str(failure.text)
    [broken] = suites["b.nurture-test"].iter("failure")
    assert "[test-syntax]" in str(broken.get("message")) and "path:" not in str(broken.text)


@pytest.mark.parametrize("where", ["missing/out.xml", "."])
def test_a_junit_file_that_cannot_be_written_is_said_before_anything_runs(
    folder: Path, where: str
) -> None:
    (folder / "a.nurture-test").write_text('test "x"\n  expect no mql\n')
    target = folder / where

    result = runner.invoke(app, ["test", str(folder), "--junit", str(target)])

    assert not isinstance(result.exception, OSError), result.exception
    assert result.exit_code == 2, result.output
    assert f"--junit {target}: not a file in an existing folder" in result.output
    assert "PASS" not in result.output and "Traceback" not in result.output


def test_json_format_gives_each_leads_path_in_a_test_with_several(folder: Path) -> None:
    (folder / "a.nurture-test").write_text(
        'test "two"\n  lead "ana" persona = "cxo"\n  lead "bo" persona = "marketer"\n'
        '  expect "ana" send email "welcome/cxo" on day 0\n'
        '  expect "bo" send email "welcome/marketer" on day 0\n'
    )
    result = runner.invoke(app, ["test", str(folder), "--format", "json"])
    assert result.exit_code == 0, result.output
    test = json.loads(result.output)["tests"][0]
    assert set(test["leads"]) == {"ana", "bo"}
    assert test["leads"]["ana"][0] == "day 0 09:00  send email 'welcome/cxo' [Welcome]"
    assert test["leads"]["bo"][0] == "day 0 09:00  send email 'welcome/marketer' [Welcome]"
    assert test["path"][0] == 'lead "ana":'


def test_json_format_lists_each_test(folder: Path) -> None:
    (folder / "a.nurture-test").write_text(
        'test "ok"\n  lead persona = "cxo"\n  expect send email "welcome/cxo" on day 0\n'
    )
    (folder / "b.nurture-test").write_text('test "broken"\n  expect mql on\n')
    result = runner.invoke(app, ["test", str(folder), "--format", "json"])
    again = runner.invoke(app, ["test", str(folder), "--format", "json"])
    assert result.exit_code == 1, result.output
    assert again.output == result.output  # stable: the same bytes for the same files
    data = json.loads(result.output)
    assert list(data) == ["passed", "failed", "tests"]
    assert (data["passed"], data["failed"]) == (1, 1)
    ok, broken = data["tests"]
    keys = ["file", "line", "test", "passed", "failures", "path", "leads"]
    assert list(ok) == keys and list(broken) == keys
    assert (ok["test"], ok["line"], ok["passed"], ok["failures"], ok["leads"]) == (
        "ok",
        1,
        True,
        [],
        {},
    )
    assert ok["path"][0] == "day 0 09:00  send email 'welcome/cxo' [Welcome]"
    assert (broken["test"], broken["passed"], broken["path"]) == ("b.nurture-test", False, [])
    assert broken["failures"][0].startswith(f"{folder / 'b.nurture-test'}:2:")
    assert "[test-syntax]" in broken["failures"][0]


def test_a_bom_in_a_test_file_or_a_campaign_is_read_past(folder: Path) -> None:
    # Given a test file and a campaign saved with a UTF-8 BOM (as `nurture check` and
    # `nurture deploy` read campaigns)
    welcome = folder.parent / "welcome.nurture"
    welcome.write_bytes(codecs.BOM_UTF8 + welcome.read_bytes())
    (folder / "a.nurture-test").write_bytes(
        codecs.BOM_UTF8
        + b'test "ok"\n  lead persona = "cxo"\n  expect send email "welcome/cxo" on day 0\n'
    )

    # When they run
    result = runner.invoke(app, ["test", str(folder)])

    # Then they read as without it
    assert result.exit_code == 0, result.output
    assert "1 passed, 0 failed" in result.output


def test_an_unknown_message_is_a_located_diagnostic(folder: Path) -> None:
    (folder / "a.nurture-test").write_text('test "x"\n  on day 2 opens "nope"\n')
    result = runner.invoke(app, ["test", str(folder)])
    assert result.exit_code == 1
    assert (
        "a.nurture-test:2:3: error: no campaign sends 'nope' [test-unknown-message]"
        in result.output
    )


TEXT = "\n".join(
    (CAMPAIGNS / "tests" / name).read_text()
    for name in (
        "welcome.nurture-test",
        "scoring-routing.nurture-test",
        "sales-desk.nurture-test",
        "global-cap.nurture-test",
    )
)
WORDS = st.sampled_from(
    [
        "on day 3 ",
        "expect ",
        '"x"',
        " at 25:00",
        "9999",
        "\n",
        "returned",
        "\n  cap 0 per week\n",
        "\n  cap 2 per 400 days\n",
        "\n  start 2026-02-30\n",
        "\n  sales accept after 2 fortnights\n",
        "\n  sales accept after 99999999999999 hours\n",
        "\n  start 9999-12-31\n",
        "\n  start 0001-01-01\n",
        "\n  expect stage banana on day 2\n",
        "nonsense",
        "\n  run 5 days\n",
        '"ana" ',
        '"bo" ',
        'on day 2 "bo" arrives\n',
        "\n  on day 1 at 08:00 arrives\n",
        '\n  lead "ana" region = "Shanghai"\n',
        '\n  lead "ana" tags "vip"\n',
        "\nsettings\n  cap 2 per day\n",
        "\n  settings\n",
        "\n  # a comment\n",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(TEXT)), st.integers(0, 8), st.text(max_size=6) | WORDS)
def test_mutated_test_files_give_diagnostics_never_tracebacks(at: int, cut: int, put: str) -> None:
    text = TEXT[:at] + put + TEXT[at + cut :]
    try:
        parse_tests(text, "t.nurture-test")
    except DslSyntaxError as e:
        assert all(d.span.line >= 1 and d.span.path == "t.nurture-test" for d in e.diagnostics)


PROGRAM = build(
    {str(p): p.read_text(encoding="utf-8") for p in sorted(CAMPAIGNS.glob("*.nurture"))}
)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, len(TEXT)), st.integers(0, 4), WORDS)
def test_mutated_test_files_that_check_clean_run_without_tracebacks(
    at: int, cut: int, put: str
) -> None:
    tests, found = diagnose(TEXT[:at] + put + TEXT[at + cut :], "t.nurture-test", PROGRAM)
    assert all(d.span.line >= 1 for d in found)
    for test in tests if not found else ():
        run_test(test, PROGRAM)


# ---------------------------------------------------------------- the docs' examples

DOC = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```\n", re.S | re.M)
EXAMPLE = "campaigns/tests/example.nurture-test"


def _doc_examples() -> list[tuple[str, str, str | None]]:
    blocks = list(FENCE.finditer(DOC))
    found = []
    for i, block in enumerate(blocks):
        if block.group(1) != "nurturetest":
            continue
        after = blocks[i + 1] if i + 1 < len(blocks) else None
        printed = after.group(3) if after is not None and after.group(1) == "text" else None
        found.append((block.group(2).strip(), block.group(3), printed))
    return found


def _program(files: str | None, no_sla: bool = False) -> CompiledProgram:
    chosen = [CAMPAIGNS / f"{n}.nurture" for n in files.split(",")] if files else None
    paths = chosen or sorted(CAMPAIGNS.glob("*.nurture"))
    texts = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in paths}
    if no_sla:  # the example routing without its SLA and the reminder that needs one
        texts = {
            p: "".join(
                line
                for line in t.splitlines(keepends=True)
                if not line.lstrip().startswith(("accept within", "remind"))
            )
            for p, t in texts.items()
        }
    return build(texts)


@pytest.mark.parametrize(("info", "text", "printed"), _doc_examples())
def test_the_docs_examples_say_what_nurture_test_does(
    info: str, text: str, printed: str | None
) -> None:
    words = dict(w.split("=", 1) if "=" in w else (w, "") for w in info.split())
    program = _program(words.get("files"), "no-sla" in words)
    tests, found = diagnose(text, EXAMPLE, program)
    if "valid" in words:
        assert not found, [d.render() for d in found]
        assert all(run_test(t, program).passed for t in tests)
    else:
        assert [d.code for d in found] == [words["expect"]]
        assert printed is not None and "\n".join(d.render() for d in found) + "\n" == printed


def test_every_test_file_diagnostic_is_documented() -> None:
    source = "".join(
        (ROOT / "dsl" / f).read_text() for f in ("testfile.py", "testsyntax.py", "testcheck.py")
    )
    codes = set(re.findall(r'"(test-[a-z-]+)"', source))
    documented = {
        words.split("expect=")[1].split()[0]
        for words, _, _ in _doc_examples()
        if "expect=" in words
    }
    assert codes == documented


# ---------------------------------------------------------------- several leads, one desk

BO_ALONE = """\
test "bo alone"
  lead "bo" industry = "saas", employees = 1000, title = "CTO", region = "Jiangsu"
  sales never accept
  on day 3 at 10:00 "bo" event "demo_requested"
  expect "bo" owner "li.na@tidewater.io"
"""


def test_a_tests_leads_share_one_sales_desk() -> None:
    # Given Bo, who alone goes to Li Na (fewest open leads, first written)
    tests, found = diagnose(BO_ALONE, "t.nurture-test", PROGRAM)
    assert not found and run_test(tests[0], PROGRAM).passed
    # When Ana's MQL, an hour earlier, is in the same test
    ana = (
        '  lead "ana" industry = "saas", employees = 1000, title = "CEO", region = "Shanghai"\n'
        '  on day 3 at 09:00 "ana" event "demo_requested"\n'
    )
    tests, found = diagnose(BO_ALONE + ana, "t.nurture-test", PROGRAM)
    assert not found
    result = run_test(tests[0], PROGRAM)
    # Then Li Na holds Ana's, and Bo's goes to Wang Fang: one desk, one clock
    assert result.failures == [
        "t.nurture-test:5: lead \"bo\": expected owner 'li.na@tidewater.io'; "
        "it was wang.fang@tidewater.io"
    ]
    assert any("lead ana  MQL (scoring rule) → li.na@tidewater.io" in s for s in result.steps)


def test_a_file_setting_applies_to_every_test_and_a_tests_own_overrides_it() -> None:
    text = (
        "settings\n  run 20 days\n  start 2026-03-07\n"
        'test "a"\n  expect no mql\n'
        'test "b"\n  run 5 days\n  start 2026-03-02\n  expect no mql\n'
    )
    first, second = parse_tests(text, "t.nurture-test")
    assert (first.days, str(first.start)) == (20, "2026-03-07")
    assert (second.days, str(second.start)) == (5, "2026-03-02")
    assert [s.line for s in (x.span for x in second.settings)] == [2, 3, 7, 8]
