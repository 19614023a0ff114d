"""`nurture check PATH...`: diagnostics as text or JSON, and exit codes 0, 1 and 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dsl import Diagnostic, Span
from nurture.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]

CLEAN = """\
campaign "Welcome"
  kind welcome
  enroll when lead created
  send email "welcome/hello" subject "Hi {{ lead.first_name }}"
  if opened within 3 days:
    tag "engaged"
  else:
    send sms "welcome/nudge"
"""

BROKEN = """\
campaign "Broken"
  enroll when lead created
  wait 3
"""

NOBODY_ENTERS = """\
campaign "Nobody enters"
  send email "welcome/hello" subject "Hi"
"""


def write(folder: Path, name: str, text: str) -> Path:
    """A campaign file, with the templates the examples above use beside it."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    templates = path.parent / "templates" / "welcome"
    templates.mkdir(parents=True, exist_ok=True)
    (templates / "hello.email.j2").write_text("Hello {{ lead.first_name }}", encoding="utf-8")
    (templates / "nudge.sms.j2").write_text("Still there?", encoding="utf-8")
    return path


def nurture_command() -> str:
    """The installed console script, beside this interpreter or on PATH."""
    beside = Path(sys.executable).parent / "nurture"
    found = str(beside) if beside.exists() else shutil.which("nurture")
    if found is None:
        pytest.fail("the `nurture` console script is not installed (pip install -e .)")
    return found


# ---------------------------------------------------------------- exit 0 and 1


def test_a_clean_file_passes(tmp_path: Path) -> None:
    path = write(tmp_path, "welcome.nurture", CLEAN)

    result = runner.invoke(app, ["check", str(path)])

    assert result.exit_code == 0, result.output
    assert result.stdout == "1 file: no problems\n"


def test_an_error_prints_where_and_exits_1(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.nurture", BROKEN)

    result = runner.invoke(app, ["check", str(path)])

    assert result.exit_code == 1, result.output
    assert f"{path}:3:" in result.stdout
    assert ": error: " in result.stdout
    assert "    wait 3" in result.stdout  # the source line, with a caret under it
    assert "^" in result.stdout
    assert "\x1b[" not in result.stdout  # no colour when stdout is not a terminal
    assert result.stdout.rstrip().splitlines()[-1] == "1 file: 1 error"


def test_json_lists_the_diagnostics_and_nothing_else(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.nurture", BROKEN)

    result = runner.invoke(app, ["check", "--format", "json", str(path)])

    assert result.exit_code == 1
    found = json.loads(result.stdout)
    assert isinstance(found, list) and len(found) == 1
    assert {"path", "line", "column", "severity", "code", "message"} <= set(found[0])
    assert found[0]["path"] == str(path)
    assert found[0]["line"] == 3
    assert found[0]["severity"] == "error"


def test_teams_and_routing_in_two_files_are_checked_together(tmp_path: Path) -> None:
    # Given teams in one file and a routing in another that misspells a team and a manager
    write(tmp_path, "teams.nurture", 'team "east"\n  member "li.na@x.io"\n')
    routing = (
        'routing\n  assign round robin team "eats" otherwise\n'
        '  accept within 1 day else reassign, then escalate to user "boss@x.io"\n'
    )
    write(tmp_path, "routing.nurture", routing)

    # When the folder is checked as JSON
    result = runner.invoke(app, ["check", "--format", "json", str(tmp_path)])

    # Then each problem is located in its file, with its code and hint
    assert result.exit_code == 1
    found = [
        (Path(d["path"]).name, d["line"], d["column"], d["code"], d.get("hint"))
        for d in json.loads(result.stdout)
    ]
    assert found == [
        ("routing.nurture", 2, 27, "unknown-team", "did you mean `east`?"),
        ("routing.nurture", 3, 60, "unknown-member", 'add `member "boss@x.io"` to a team'),
        (
            "teams.nurture",
            1,
            6,
            "unused-team",
            'route to it (`assign to team "east" when ...`), or remove it',
        ),
    ]


def test_json_of_a_clean_file_is_an_empty_list(tmp_path: Path) -> None:
    path = write(tmp_path, "welcome.nurture", CLEAN)

    result = runner.invoke(app, ["check", "--format", "json", str(path)])

    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_a_folder_is_searched_recursively_and_checked_together(tmp_path: Path) -> None:
    write(tmp_path, "welcome.nurture", CLEAN)
    write(tmp_path, "more/deeper/broken.nurture", BROKEN)
    (tmp_path / "notes.txt").write_text("not a campaign", encoding="utf-8")

    result = runner.invoke(app, ["check", str(tmp_path)])

    assert result.exit_code == 1
    assert str(tmp_path / "more" / "deeper" / "broken.nurture") in result.stdout
    assert result.stdout.rstrip().splitlines()[-1] == "2 files: 1 error"


def test_a_file_named_twice_is_checked_once(tmp_path: Path) -> None:
    path = write(tmp_path, "welcome.nurture", CLEAN)

    result = runner.invoke(app, ["check", str(path), str(tmp_path)])

    assert result.exit_code == 0
    assert result.stdout == "1 file: no problems\n"


def test_chinese_names_and_paths_survive(tmp_path: Path) -> None:
    source = BROKEN.replace('"Broken"', '"欢迎 新客户"')
    path = write(tmp_path, "活动/欢迎.nurture", source)

    result = runner.invoke(app, ["check", "--format", "json", str(tmp_path)])

    assert json.loads(result.stdout)[0]["path"] == str(path)


# ---------------------------------------------------------------- warnings and --strict


def warn_everything(program: object, templates: object = None) -> list[Diagnostic]:
    span = Span("welcome.nurture", 1, 1, 1, 9)
    return [Diagnostic("warning", "over-cap", span, "more touches than the cap allows")]


def test_strict_turns_a_warning_into_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a checker that only ever warns
    monkeypatch.setattr("dsl.pipeline.run_checks", warn_everything)
    path = write(tmp_path, "welcome.nurture", CLEAN)

    plain = runner.invoke(app, ["check", str(path)])
    strict = runner.invoke(app, ["check", "--strict", str(path)])

    assert plain.exit_code == 0, plain.output
    assert plain.stdout.rstrip().splitlines()[-1] == "1 file: 1 warning"
    assert strict.exit_code == 1
    assert ": warning: more touches than the cap allows [over-cap]" in strict.stdout


def test_strict_with_the_real_checker(tmp_path: Path) -> None:
    """`no-trigger`: a campaign nobody can enter is a warning of the checker."""
    path = write(tmp_path, "nobody.nurture", NOBODY_ENTERS)

    plain = runner.invoke(app, ["check", "--format", "json", str(path)])
    strict = runner.invoke(app, ["check", "--strict", str(path)])

    codes = [d["code"] for d in json.loads(plain.stdout)]
    assert codes == ["no-trigger"], plain.stdout
    assert plain.exit_code == 0
    assert strict.exit_code == 1


# ---------------------------------------------------------------- exit 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.nurture"], "error: no such file or folder: missing.nurture"),
        (["{tmp}"], "error: no .nurture files found in {tmp}"),
        (["{tmp}/x.nurture", "--templates", "{tmp}/nope"], "error: --templates {tmp}/nope: "),
    ],
    ids=["missing path", "empty folder", "missing templates folder"],
)
def test_usage_errors_say_what_in_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "x.nurture").write_text(CLEAN, encoding="utf-8")
    tmp = str(tmp_path / "empty") if args == ["{tmp}"] else str(tmp_path)

    result = runner.invoke(app, ["check", *(a.replace("{tmp}", tmp) for a in args)])

    assert result.exit_code == 2
    assert result.stderr.startswith(message.replace("{tmp}", tmp))
    assert len(result.stderr.splitlines()) == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "latin1.nurture"
    path.write_bytes('campaign "Café"\n'.encode("latin-1"))

    result = runner.invoke(app, ["check", str(path)])

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: cannot read {path}: not UTF-8 text")
    assert "Traceback" not in result.output


def test_an_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path, "welcome.nurture", CLEAN)

    result = runner.invoke(app, ["check", "--format", "xml", str(path)])

    assert result.exit_code == 2


# ---------------------------------------------------------------- the installed command


def test_the_installed_command_exits_0_1_and_2(tmp_path: Path) -> None:
    clean = write(tmp_path, "ok/welcome.nurture", CLEAN)
    broken = write(tmp_path, "bad/broken.nurture", BROKEN)
    command = nurture_command()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [command, "check", *args], capture_output=True, text=True, encoding="utf-8"
        )

    ok, bad, missing = run(str(clean)), run(str(broken)), run(str(tmp_path / "nope"))

    assert (ok.returncode, bad.returncode, missing.returncode) == (0, 1, 2)
    assert ok.stdout == "1 file: no problems\n"
    assert "1 file: 1 error" in bad.stdout
    assert missing.stderr.startswith("error: no such file or folder:")
    assert "Traceback" not in ok.stderr + bad.stderr + missing.stderr


@pytest.mark.skipif(
    not (REPO / "campaigns" / "welcome.nurture").exists(),
    reason="the example campaigns (campaigns/welcome.nurture) are not written yet",
)
def test_the_example_campaigns_check_and_draw() -> None:
    command = nurture_command()
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}

    checked = subprocess.run(
        [command, "check", "campaigns/"], cwd=REPO, capture_output=True, text=True, env=env
    )
    drawn = subprocess.run(
        [command, "graph", "campaigns/welcome.nurture"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.rstrip().endswith(": no problems"), checked.stdout
    assert drawn.returncode == 0, drawn.stderr
    assert "flowchart TD" in drawn.stdout
