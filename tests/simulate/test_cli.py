"""`nurture simulate PATH...`: text and JSON reports, and exit codes 0, 1 and 2."""

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
REPO = Path(__file__).resolve().parents[2]
CAMPAIGNS = REPO / "campaigns"
KEYS = ("leads", "days", "seed", "steps", "touches_per_lead", "max_touches_7d", "mql", "exits")
KEYS += ("in_flight",)

WELCOME = """\
campaign "Welcome"
  enroll when lead created
  cap 2 per week
  send email "welcome/hello" subject "Hi {{ lead.first_name }}"
  if opened within 3 days:
    tag "engaged"
  else:
    send email "welcome/hello"
  wait 1 day
  send email "welcome/hello"
"""


def write(folder: Path, name: str, text: str) -> Path:
    """A campaign file with the template it sends beside it."""
    path = folder / name
    path.write_text(text, encoding="utf-8")
    templates = folder / "templates" / "welcome"
    templates.mkdir(parents=True, exist_ok=True)
    (templates / "hello.email.j2").write_text("Hello {{ lead.first_name }}", encoding="utf-8")
    return path


def simulate(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["simulate", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_json_has_every_key_and_stays_clean(tmp_path: Path) -> None:
    path = write(tmp_path, "welcome.nurture", WELCOME)

    code, out, err = simulate(str(path), "--leads", "40", "--days", "14", "--seed", "3", "--json")

    assert code == 0, err
    data = json.loads(out)
    for key in KEYS:
        assert key in data, key
    assert (data["leads"], data["days"], data["seed"]) == (40, 14, 3)
    first = data["steps"][0]
    for key in ("id", "kind", "line", "entered", "sent", "opened", "clicked", "deferred"):
        assert key in first, key
    assert set(data["touches_per_lead"]) >= {"mean", "max"}
    assert set(data["mql"]) >= {"count", "days_median", "days_p90"}
    assert data["max_touches_7d"] <= 2


def test_the_same_seed_prints_the_same_json(tmp_path: Path) -> None:
    path = write(tmp_path, "welcome.nurture", WELCOME)
    args = (str(path), "--leads", "60", "--days", "20", "--json")

    one = simulate(*args, "--seed", "5")[1]
    two = simulate(*args, "--seed", "5")[1]
    other = simulate(*args, "--seed", "6")[1]

    assert one == two
    assert json.loads(one)["steps"] != json.loads(other)["steps"]


def test_text_output_shows_the_steps_and_the_totals(tmp_path: Path) -> None:
    path = write(tmp_path, "welcome.nurture", WELCOME)

    code, out, err = simulate(str(path), "--leads", "30", "--days", "14", "--open-rate", "0")

    assert code == 0, err
    assert "Simulated 30 leads over 14 days (seed 0" in out
    assert "Welcome (nurture): 30 enrolled" in out
    for header in ("step", "line", "kind", "what", "entered", "sent", "deferred", "opened"):
        assert header in out
    assert "email welcome/hello" in out
    assert "opened within 3 days?" in out
    assert "touches per lead" in out and "mean 3.00, max 3" in out
    assert "held back by a cap (2 per week)" in out
    assert "no lead became an MQL in 14 days" in out
    assert "\x1b[" not in out


def test_rates_come_from_the_options(tmp_path: Path) -> None:
    path = write(tmp_path, "welcome.nurture", WELCOME)
    args = (str(path), "--leads", "20", "--days", "10", "--json", "--click-rate", "0")

    data = json.loads(simulate(*args, "--open-rate", "1", "--reply-rate", "1")[1])

    assert data["rates"]["open"] == 1.0
    assert data["events"]["replied"] == data["touches_per_lead"]["total"]
    assert next(s for s in data["steps"] if s["id"] == "n3")["entered"] == 20  # all opened


def test_a_profile_file_gives_the_leads(tmp_path: Path) -> None:
    path = write(tmp_path, "welcome.nurture", WELCOME)
    profile = tmp_path / "leads.csv"
    profile.write_text(
        "email,first_name,time_zone\nli@example.cn,Li,Asia/Shanghai\njo@example.com,Jo,UTC\n",
        encoding="utf-8",
    )

    code, out, err = simulate(str(path), "--profile", str(profile), "--days", "10", "--json")

    assert code == 0, err
    data = json.loads(out)
    assert data["leads"] == 2 and data["profile"] == str(profile)


# ---------------------------------------------------------------- errors


def test_a_bad_profile_row_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "welcome.nurture", WELCOME)
    profile = tmp_path / "leads.csv"
    profile.write_text("email,employees\na@b.c,10\nd@e.f,lots\n", encoding="utf-8")

    code, out, err = simulate(str(path), "--profile", str(profile), "--json")

    assert code == 2
    assert out == ""
    assert f"error: {profile}:3: employees: 'lots' is not a number" in err


def test_campaign_errors_print_diagnostics_and_exit_1(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.nurture", 'campaign "Broken"\n  wait 3\n')

    code, out, err = simulate(str(path), "--json")

    assert code == 1
    assert out == ""
    assert f"{path}:2:" in err and ": error: " in err
    assert "Traceback" not in err


def test_an_unknown_campaign_exits_2_and_lists_the_campaigns(tmp_path: Path) -> None:
    path = write(tmp_path, "welcome.nurture", WELCOME)

    code, _, err = simulate(str(path), "--campaign", "Nope")

    assert code == 2
    assert 'no campaign "Nope"' in err and 'campaigns: "Welcome"' in err


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--leads", "0"), "--leads must be at least 1 (got 0)"),
        (("--leads", "-5"), "--leads must be at least 1 (got -5)"),
        (("--days", "0"), "--days must be between 1 and 3650 (got 0)"),
        (("--days", "100000"), "--days must be between 1 and 3650 (got 100000)"),
        (("--open-rate", "1.5"), "--open-rate must be between 0 and 1 (got 1.5)"),
        (("--click-rate", "-0.1"), "--click-rate must be between 0 and 1 (got -0.1)"),
        (("--reply-rate", "nan"), "--reply-rate must be between 0 and 1 (got nan)"),
        (("--jobs", "0"), "--jobs must be at least 1 (got 0)"),
    ],
)
def test_numbers_out_of_range_exit_2(tmp_path: Path, option: tuple[str, str], message: str) -> None:
    path = write(tmp_path, "welcome.nurture", WELCOME)

    code, out, err = simulate(str(path), *option)

    assert code == 2
    assert out == ""
    assert f"error: {message}" in err


def test_a_missing_path_exits_2(tmp_path: Path) -> None:
    code, _, err = simulate(str(tmp_path / "nowhere"))

    assert code == 2
    assert f"no such file or folder: {tmp_path / 'nowhere'}" in err


def test_files_without_campaigns_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "scoring.nurture"
    path.write_text('scoring "S"\n  interest:\n    +1 per open\n', encoding="utf-8")

    code, _, err = simulate(str(path))

    assert code == 2
    assert "no campaign to simulate" in err


# ---------------------------------------------------------------- the example campaigns


def nurture_command() -> str:
    beside = Path(sys.executable).parent / "nurture"
    found = str(beside) if beside.exists() else shutil.which("nurture")
    if found is None:
        pytest.fail("the `nurture` console script is not installed (pip install -e .)")
    return found


def test_the_example_campaigns_simulate_with_the_console_script() -> None:
    # Given the example campaigns, run as a marketer would
    args = ["simulate", "campaigns/", "--leads", "200", "--days", "60", "--seed", "1", "--json"]

    done = subprocess.run(
        [nurture_command(), *args], cwd=REPO, capture_output=True, text=True, timeout=600
    )

    # Then it exits 0 with clean JSON that covers every campaign and found nobody stuck
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    for key in KEYS:
        assert key in data, key
    names = {c["name"] for c in data["campaigns"]}
    assert {"Welcome", "Product drip", "Win back", "华东客户沙龙邀请"} <= names
    assert data["leads"] == 200
    assert data["in_flight"]["stuck"] == 0
    assert "Traceback" not in done.stderr
    welcome = [s for s in data["steps"] if s["campaign"] == "Welcome"]
    assert welcome[0]["entered"] > 190  # a few existing customers leave at once


def test_the_welcome_campaign_alone_reaches_mqls() -> None:
    code, out, err = simulate(
        str(CAMPAIGNS), "-c", "Welcome", "--leads", "300", "--days", "90", "--seed", "2", "--json"
    )

    assert code == 0, err
    data = json.loads(out)
    assert data["entry_campaigns"] == ["Welcome"]
    assert data["mql"]["count"] > 0
    assert data["mql"]["days_median"] is not None
    assert data["in_flight"]["stuck"] == 0
    drip = next(c for c in data["campaigns"] if c["name"] == "Product drip")
    assert drip["enrolled"] > 0  # Welcome's `enroll "Product drip"` and the tag trigger
