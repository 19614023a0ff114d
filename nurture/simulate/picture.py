"""A dry run's numbers on the campaigns' picture (`simulate --graph`, `graph --counts simulate`).

The report's per-step counts (`report`) become `dsl.draw.Numbers`, plain data
the drawing code puts under each step's words and on the edges out of a
branch, split or repeat; the picture's format follows the file's suffix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dsl.draw import REACH, Numbers, to_dot_many, to_mermaid_many
from dsl.graph import CompiledProgram, StepGraph
from nurture.simulate.behaviour import Rates
from nurture.simulate.model import Settings

FORMATS = {".svg": "svg", ".dot": "dot", ".gv": "dot", ".mmd": "mermaid", ".mermaid": "mermaid"}
"""A picture's format by its file's suffix."""


def numbers(report: Mapping[str, Any]) -> dict[str, Numbers]:
    """Each campaign's step and edge counts from a `simulate` report (`--json`'s dict)."""
    steps: dict[str, dict[str, dict[str, int]]] = {}
    edges: dict[str, dict[tuple[str, str], int]] = {}
    for step in report["steps"]:
        name, node_id = step["campaign"], step["id"]
        steps.setdefault(name, {})[node_id] = {k: int(step.get(k) or 0) for k in REACH}
        for target, count in (step.get("took") or {}).items():
            edges.setdefault(name, {})[(node_id, target)] = int(count)
    return {name: Numbers(steps[name], edges.get(name, {})) for name in steps}


def format_of(path: Path) -> str | None:
    """`svg`, `dot` or `mermaid` for the file's suffix; None for one this cannot write."""
    return FORMATS.get(path.suffix.lower())


def draw(graphs: Sequence[StepGraph], counts: Mapping[str, Numbers], form: str) -> str:
    """The picture's source text: Mermaid, or DOT (which `dot -Tsvg` turns into SVG)."""
    if form == "mermaid":
        return to_mermaid_many(graphs, counts)
    return to_dot_many(graphs, counts)


def simulated_numbers(
    program: CompiledProgram,
    leads: int,
    days: int,
    seed: int,
    jobs: int | None,
    open_rate: float,
    click_rate: float,
) -> dict[str, Numbers]:
    """A dry run's numbers for `graph --counts simulate`, with production's global cap.

    ValueError names a setting out of range, as `nurture simulate` says it.
    """
    from nurture.config import ConfigError
    from nurture.config import Settings as RuntimeSettings
    from nurture.simulate.shards import cores, simulate_jobs

    rates = Rates(open=open_rate, click=click_rate)
    try:
        cap = RuntimeSettings.load().global_cap
    except ConfigError as e:
        raise ValueError(str(e)) from e
    settings = Settings(leads=leads, days=days, seed=seed, rates=rates, global_cap=cap)
    problems = settings.problems()
    if jobs is not None and jobs < 1:
        problems.append(f"--jobs must be at least 1 (got {jobs})")
    if problems:
        raise ValueError("; ".join(problems))
    return numbers(simulate_jobs(program, settings, None, jobs or cores()))
