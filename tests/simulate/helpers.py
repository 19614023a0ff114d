"""Helpers for the simulator tests: compile small campaigns and run them with fixed rates."""

from __future__ import annotations

from typing import Any

import dsl
from dsl.graph import CompiledProgram
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
