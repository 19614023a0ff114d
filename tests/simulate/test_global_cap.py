"""`nurture simulate --global-cap`: the cap over all campaigns, as production applies it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.simulate.test_cli import simulate, write

TWO_FLOWS = """\
campaign "Daily tips"
  enroll when lead created
  repeat 14 times:
    send email "welcome/hello"
    wait 1 day

campaign "Daily news"
  enroll when lead created
  repeat 14 times:
    send email "welcome/hello"
    wait 1 day
"""


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two flows that each mail every day, in a folder with no nurture.toml and no cap set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NURTURE_GLOBAL_CAP", raising=False)
    return write(tmp_path, "flows.nurture", TWO_FLOWS)


def report(path: Path, *more: str) -> dict[str, object]:
    code, out, err = simulate(str(path), "--leads", "20", "--days", "14", "--json", *more)
    assert code == 0, err
    data: dict[str, object] = json.loads(out)
    return data


def test_without_a_cap_two_daily_flows_mail_twice_a_day(flows: Path) -> None:
    data = report(flows)

    assert data["max_touches_7d"] == 14
    assert "global_cap" not in data


def test_a_global_cap_defers_touches_across_campaigns(flows: Path) -> None:
    data = report(flows, "--global-cap", "5 per week")

    assert data["max_touches_7d"] == 5
    assert data["global_cap"] == "5 per week"
    steps = data["steps"]
    assert isinstance(steps, list)
    assert sum(s["deferred_by"].get("global cap", 0) for s in steps) > 0


def test_the_cap_production_uses_applies_by_default(
    flows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "nurture.toml").write_text('global_cap = "3 per week"\n', encoding="utf-8")
    assert report(flows)["max_touches_7d"] == 3

    monkeypatch.setenv("NURTURE_GLOBAL_CAP", "4 per week")
    assert report(flows)["global_cap"] == "4 per week"

    assert "global_cap" not in report(flows, "--global-cap", "none")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("often", "--global-cap must read like '5 per week'"),
        ("3 per 0 days", "--global-cap: the period must be at least one day"),
    ],
)
def test_a_bad_cap_is_a_usage_error(flows: Path, text: str, message: str) -> None:
    code, out, err = simulate(str(flows), "--global-cap", text)

    assert code == 2
    assert message in err
    assert out == ""


def test_the_text_report_names_the_global_cap(flows: Path) -> None:
    code, out, err = simulate(str(flows), "--leads", "10", "--days", "14", "--global-cap", "5/week")

    assert code == 0, err
    assert "all campaigns: 5 per week" in out
    assert "consider a global cap" not in out
