"""`nurture graph FILE`: Mermaid, DOT and SVG pictures of campaigns."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nurture.cli import app

runner = CliRunner()
needs_graphviz = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz `dot` is not installed (apt-get install graphviz)"
)

WELCOME = """\
campaign "Welcome"
  kind welcome
  enroll when lead created
  cap 3 per week
  send email "welcome/hello" subject "Hi {{ lead.first_name }}"
  if opened within 3 days:
    tag "engaged"
  else:
    enroll "产品滴灌"
"""

DRIP = """\
campaign "产品滴灌"
  kind drip
  repeat 3 times:
    send email "welcome/hello" subject "第{{ loop.index }}期"
    wait 1 week
"""

TWO = """\
campaign "First"
  enroll when lead created
  send email "welcome/hello" subject "One"

campaign "Second"
  enroll when tagged "x"
  send email "welcome/hello" subject "Two"
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    templates = path.parent / "templates" / "welcome"
    templates.mkdir(parents=True, exist_ok=True)
    (templates / "hello.email.j2").write_text("Hello {{ lead.first_name }}", encoding="utf-8")
    return path


@pytest.fixture
def campaigns(tmp_path: Path) -> Path:
    """A folder with a welcome campaign that hands leads to a drip in another file."""
    write(tmp_path, "welcome.nurture", WELCOME)
    write(tmp_path, "drip.nurture", DRIP)
    return tmp_path


def test_mermaid_is_the_default_and_goes_to_stdout(campaigns: Path) -> None:
    result = runner.invoke(app, ["graph", str(campaigns / "welcome.nurture")])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:2] == ["---", 'title: "Welcome — welcome campaign"']
    assert "flowchart TD" in lines
    for node_id in ("n1", "n2", "n3", "n4", "End"):
        assert f"  {node_id}" in result.stdout
    assert '  n2 -->|"no open in 3 days"| n4' in result.stdout
    assert '  n4[["enroll #quot;产品滴灌#quot;"]]:::enroll' in result.stdout
    assert "产品滴灌 —" not in result.stdout  # only the file's own campaign is drawn


def test_output_to_a_file(campaigns: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "welcome.dot"
    out.parent.mkdir()

    result = runner.invoke(
        app, ["graph", str(campaigns / "drip.nurture"), "--format", "dot", "-o", str(out)]
    )

    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    text = out.read_text(encoding="utf-8")
    assert text.startswith('digraph "产品滴灌" {')
    assert 'charset="UTF-8"' in text
    assert '"n3" -> "n1" [label="repeat ×3", style=dashed];' in text


def test_a_folder_with_campaign_picks_one(campaigns: Path) -> None:
    result = runner.invoke(app, ["graph", str(campaigns), "--campaign", "产品滴灌"])

    assert result.exit_code == 0, result.output
    assert result.stdout.count("flowchart TD") == 1
    assert 'title: "产品滴灌 — drip campaign"' in result.stdout


def test_a_folder_without_campaign_draws_them_all(campaigns: Path) -> None:
    result = runner.invoke(app, ["graph", str(campaigns)])

    assert result.exit_code == 0, result.output
    assert result.stdout.count("flowchart TD") == 1
    assert result.stdout.count("  subgraph c") == 2


def test_an_unknown_campaign_lists_the_campaigns(campaigns: Path) -> None:
    result = runner.invoke(app, ["graph", str(campaigns), "--campaign", "Welcom"])

    assert result.exit_code == 2
    assert result.stderr == (
        f'error: no campaign "Welcom" in {campaigns}; campaigns: "产品滴灌", "Welcome"\n'
    )


def test_several_campaigns_in_one_file(tmp_path: Path) -> None:
    path = write(tmp_path, "two.nurture", TWO)

    mermaid = runner.invoke(app, ["graph", str(path)])
    dot = runner.invoke(app, ["graph", str(path), "--format", "dot"])

    assert mermaid.stdout.count("flowchart TD") == 1
    assert "subgraph c1[" in mermaid.stdout and "subgraph c2[" in mermaid.stdout
    assert "c1_n1" in mermaid.stdout and "c2_n1" in mermaid.stdout
    assert "c1_end" in mermaid.stdout
    assert dot.stdout.count("digraph") == 1
    assert dot.stdout.count("subgraph") == 2
    assert '"First/n1"' in dot.stdout and '"Second/n1"' in dot.stdout


@needs_graphviz
def test_dot_of_several_campaigns_is_valid_graphviz(tmp_path: Path) -> None:
    path = write(tmp_path, "two.nurture", TWO)
    dot = runner.invoke(app, ["graph", str(path), "--format", "dot"])

    done = subprocess.run(["dot", "-Tsvg"], input=dot.stdout_bytes, capture_output=True)

    assert done.returncode == 0, done.stderr
    assert not done.stderr


@needs_graphviz
def test_svg_through_graphviz_keeps_chinese(campaigns: Path, tmp_path: Path) -> None:
    out = tmp_path / "drip.svg"

    result = runner.invoke(
        app, ["graph", str(campaigns / "drip.nurture"), "--format", "svg", "-o", str(out)]
    )

    assert result.exit_code == 0, result.output
    svg = out.read_text(encoding="utf-8")
    assert "<svg" in svg
    assert "产品滴灌" in svg


def test_svg_without_graphviz_says_how_to_get_it(
    campaigns: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("nurture.cli.lang.shutil.which", lambda name: None)

    result = runner.invoke(app, ["graph", str(campaigns / "welcome.nurture"), "--format", "svg"])

    assert result.exit_code == 1
    assert result.stderr == (
        "error: Graphviz is not installed: install it (e.g. apt-get install graphviz)"
        " or use --format mermaid\n"
    )


def test_errors_in_the_source_are_printed_and_exit_1(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.nurture", 'campaign "Broken"\n  wait 3\n')

    result = runner.invoke(app, ["graph", str(path)])

    assert result.exit_code == 1
    assert f"{path}:2:" in result.stderr
    assert ": error: " in result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == "1 file: 1 error"
    assert result.stdout == ""


def test_a_broken_neighbour_does_not_stop_a_clean_file(campaigns: Path) -> None:
    write(campaigns, "broken.nurture", 'campaign "Broken"\n  wait 3\n')

    result = runner.invoke(app, ["graph", str(campaigns / "drip.nurture")])

    assert result.exit_code == 0, result.output
    assert "flowchart TD" in result.stdout


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["graph", str(tmp_path / "nope.nurture")])

    assert result.exit_code == 2
    assert result.stderr.startswith("error: no such file or folder:")


def test_a_file_without_campaigns_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, "segments.nurture", 'segment "hot"\n  score >= 50\n')

    result = runner.invoke(app, ["graph", str(path)])

    assert result.exit_code == 2
    assert result.stderr == f"error: {path} has no campaign to draw\n"


def test_the_installed_command_draws_mermaid(campaigns: Path) -> None:
    command = Path(sys.executable).parent / "nurture"
    if not command.exists():
        pytest.fail("the `nurture` console script is not installed (pip install -e .)")

    done = subprocess.run(
        [str(command), "graph", str(campaigns / "welcome.nurture")],
        capture_output=True,
        encoding="utf-8",
    )

    assert done.returncode == 0, done.stderr
    assert "flowchart TD" in done.stdout
    assert "产品滴灌" in done.stdout


# ---------------------------------------------------------------- --counts simulate

FLOW = """\
campaign "Demo"
  enroll when lead created
  send email "hello" subject "Hi"
  if opened within 2 days:
    send email "more" subject "More"
  else:
    exit
"""


def _flow(tmp_path: Path) -> Path:
    path = tmp_path / "demo.nurture"
    path.write_text(FLOW, encoding="utf-8")
    for name in ("hello", "more"):
        (tmp_path / "templates").mkdir(exist_ok=True)
        (tmp_path / "templates" / f"{name}.email.j2").write_text("Hi", encoding="utf-8")
    return path


def test_counts_simulate_puts_the_dry_runs_numbers_on_the_mermaid(tmp_path: Path) -> None:
    path = _flow(tmp_path)
    args = ["--leads", "300", "--days", "10", "--seed", "2", "--open-rate", "0.5"]

    drawn = runner.invoke(app, ["graph", str(path), "--counts", "simulate", *args])
    report = runner.invoke(app, ["simulate", str(path), *args, "--json"])

    assert drawn.exit_code == 0, drawn.stderr
    steps = {s["id"]: s for s in json.loads(report.stdout)["steps"]}
    assert "entered 300 · sent 300 · opened " in drawn.stdout
    assert f'n2 -->|"yes · {steps["n3"]["entered"]}"| n3' in drawn.stdout
    assert f'no open in 2 days · {steps["n4"]["entered"]}"| n4' in drawn.stdout
    assert steps["n3"]["entered"] + steps["n4"]["entered"] == 300


def test_counts_simulate_in_dot_and_the_same_numbers_whatever_the_jobs(tmp_path: Path) -> None:
    path = _flow(tmp_path)
    base = ["graph", str(path), "--counts", "simulate", "--format", "dot", "--leads", "600"]

    one = runner.invoke(app, [*base, "--jobs", "1"])
    two = runner.invoke(app, [*base, "--jobs", "2"])

    assert one.exit_code == 0 and "\\nentered 600 · sent 600" in one.stdout
    assert two.stdout == one.stdout


@needs_graphviz
def test_counts_simulate_in_svg(tmp_path: Path) -> None:
    path = _flow(tmp_path)

    done = runner.invoke(app, ["graph", str(path), "--counts", "simulate", "--format", "svg"])

    assert done.exit_code == 0 and "<svg" in done.stdout and "entered 1,000" in done.stdout


def test_counts_simulate_refuses_numbers_out_of_range(tmp_path: Path) -> None:
    path = _flow(tmp_path)

    done = runner.invoke(app, ["graph", str(path), "--counts", "simulate", "--days", "0"])

    assert done.exit_code == 2 and done.stdout == ""
    assert "--days must be between 1 and 3650 (got 0)" in done.stderr
