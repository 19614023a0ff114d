"""Helpers for the simulator tests: compile small campaigns and run them with fixed rates,
or write them to a folder and run `nurture simulate` on it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

import dsl
from dsl.graph import CompiledProgram
from nurture.cli import app
from nurture.simulate import Rates, Settings, simulate, synthetic_leads

NEVER = Rates(open=0.0, click=0.0, reply=0.0, event=0.0)
"""Leads who never react: the flow's timeouts and `else` branches only."""
ALWAYS = Rates(open=1.0, click=1.0, reply=0.0, event=0.0)
"""Leads who open and click everything."""


def program(text: str, **more: str) -> CompiledProgram:
    """Compile campaign text (and more files by name) without template checks."""
    return dsl.build({"main.nurture": text, **{f"{k}.nurture": v for k, v in more.items()}})


def run(
    prog: CompiledProgram,
    leads: int = 20,
    days: int = 30,
    seed: int = 1,
    rates: Rates = NEVER,
    entry: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Simulate synthetic leads and return the report."""
    settings = Settings(leads=leads, days=days, seed=seed, rates=rates, entry=entry)
    return simulate(prog, settings, synthetic_leads(leads, seed, prog))


def step(report: dict[str, Any], node_id: str, campaign: str | None = None) -> dict[str, Any]:
    """One step's row of the report."""
    rows = [
        s
        for s in report["steps"]
        if s["id"] == node_id and (campaign is None or s["campaign"] == campaign)
    ]
    assert len(rows) == 1, rows
    return rows[0]


def campaign(report: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in report["campaigns"] if c["name"] == name]
    return found


SEND = re.compile(r'send (\w+) "([^"]+)"')
runner = CliRunner()


def write(folder: Path, text: str, name: str = "flow.nurture") -> Path:
    """A campaign (or scoring) file, with a template for every `send` in it."""
    path = folder / name
    path.write_text(text, encoding="utf-8")
    for channel, template in SEND.findall(text):
        file = folder / "templates" / f"{template}.{channel}.j2"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("Hello {{ lead.email }}", encoding="utf-8")
    return path


def cli(*args: str) -> tuple[int, str, str]:
    """`nurture simulate ARGS`: exit code, stdout, stderr (a traceback fails the test)."""
    result = runner.invoke(app, ["simulate", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def report(*args: str) -> dict[str, Any]:
    """`nurture simulate ARGS --json`, which must succeed."""
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data
