"""The campaign page's "simulate": a dry run of the deployed version, as ``nurture simulate``
runs it, drawn with its projected numbers and summed up in a small table.

The form is bounded (`MAX_LEADS` leads, `MAX_DAYS` days) and the run is
too: it runs in a child process of its own (`nurture.simulate.isolated`;
the request's thread waits for it, so the server's threads keep the
interpreter), one run at a time per server process, killed once it has
taken `SECONDS`, and the form says so. No transaction is open while it runs (the
view reads the program, then commits), so the workers' writes go on, on
SQLite too.
The program is the deployed one: this version's graph, with the active
scoring model, routing, segments and fields, and production's global cap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.orm import Session

from dsl.draw import Numbers
from dsl.graph import CompiledProgram, StepGraph
from nurture.models import CampaignVersion
from nurture.simulate.isolated import TooLong, run_within
from nurture.simulate.model import Settings
from nurture.simulate.picture import numbers
from nurture.store import definitions

MAX_LEADS: Final = 20_000
MAX_DAYS: Final = 365
MAX_SEED: Final = 2**31 - 1
SECONDS: Final = 30.0
"""The longest a run may take before it is abandoned."""
DEFAULTS: Final = {"leads": "1000", "days": "90", "seed": "0"}
RUNNING = threading.Lock()
"""Held while a run is under way: one at a time per process."""


class Refused(ValueError):
    """The form's values, or the run, cannot be done: the words say why (shown on the form)."""

    def __init__(self, words: str, status: int = 400) -> None:
        super().__init__(words)
        self.status = status


@dataclass(frozen=True, slots=True)
class Asked:
    leads: int
    days: int
    seed: int


@dataclass(frozen=True, slots=True)
class Projection:
    """One dry run of a version: its settings, its numbers for the picture, its steps."""

    asked: Asked
    numbers: Numbers
    steps: tuple[dict[str, Any], ...]
    """The report's steps of this campaign (`nurture simulate --json`'s)."""
    mqls: int
    completed: int
    seconds: float


def read_form(form: Mapping[str, str]) -> Asked:
    """The form's leads, days and seed, each a whole number in its range; `Refused` names the
    first field that is not."""
    got = {name: _whole(form, name) for name in ("leads", "days", "seed")}
    for name, low, high in (("leads", 1, MAX_LEADS), ("days", 1, MAX_DAYS), ("seed", 0, MAX_SEED)):
        if not low <= got[name] <= high:
            raise Refused(f"{name} must be between {low:,} and {high:,} (got {got[name]:,}).")
    return Asked(got["leads"], got["days"], got["seed"])


def _whole(form: Mapping[str, str], name: str) -> int:
    text = form.get(name, "").strip().replace(",", "").replace("_", "")
    if not text:
        raise Refused(f"{name} is required: a whole number.")
    try:
        return int(text)
    except ValueError:
        raise Refused(f"{name} must be a whole number (got {form.get(name, '')[:40]!r}).") from None


def program_of(session: Session, version: CampaignVersion) -> tuple[CompiledProgram, StepGraph]:
    """The deployed program a dry run of `version` runs: its graph and the active definitions."""
    graph = StepGraph.from_json(version.graph)
    found = definitions.active(session, "fields")
    program = CompiledProgram(
        campaigns={graph.name: graph},
        scoring=definitions.active_scoring(session),
        routing=definitions.active_routing(session),
        segments=definitions.active_segments(session),
        fields=dict(found.body) if found is not None else {},
    )
    return program, graph


def project(
    program: CompiledProgram, graph: StepGraph, asked: Asked, seconds: float = SECONDS
) -> Projection:
    """Run the dry run (see the module); `Refused` when another runs or it takes too long."""
    from nurture.config import ConfigError
    from nurture.config import Settings as RuntimeSettings

    try:
        cap = RuntimeSettings.load().global_cap
    except ConfigError as e:
        raise Refused(f"The server's settings are wrong: {e}", 500) from e
    settings = Settings(leads=asked.leads, days=asked.days, seed=asked.seed, global_cap=cap)
    if not RUNNING.acquire(blocking=False):
        raise Refused("Another simulation is running on this server; try again in a moment.", 503)
    started = time.monotonic()
    try:
        report = run_within(program, settings, seconds)
    except TooLong:
        raise Refused(
            f"The simulation took longer than {seconds:g} seconds and was stopped: "
            "try fewer leads or days.",
            422,
        ) from None
    finally:
        RUNNING.release()
    steps = tuple(s for s in report["steps"] if s["campaign"] == graph.name)
    drawn = numbers(report).get(graph.name, Numbers())
    return Projection(
        asked,
        drawn,
        steps,
        int(report["mql"]["count"]),
        int(report["completed"]),
        time.monotonic() - started,
    )
