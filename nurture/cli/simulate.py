"""``nurture simulate``: the marketer's dry run of campaigns over simulated weeks.

Exit codes: 0 the run finished, 1 problems in the campaigns (diagnostics as
``nurture check`` prints them), 2 bad usage: a missing path, a number out of
range, an unknown ``--campaign``, a bad ``--profile`` row.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from dsl import FileTemplates, analyze, compile_program
from dsl.graph import CompiledProgram, StepGraph
from nurture.cli.lang import (
    TemplatesOption,
    _collect,
    _fail,
    _print_diagnostics,
    _read_all,
    _report,
    _svg,
    _template_roots,
    _write,
)
from nurture.config import ConfigError, describe_cap, parse_cap
from nurture.config import Settings as RuntimeSettings
from nurture.engine.caps import Cap
from nurture.simulate import ProfileError, Rates, Settings, load_profile, render
from nurture.simulate.leads import Profile
from nurture.simulate.picture import draw, format_of, numbers
from nurture.simulate.shards import cores, simulate_jobs

DEFAULT_LEADS = 1000
WIDE = 160
"""Columns for text output that is not a terminal (a file, a pipe): tables stay on one line."""


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to the main ``nurture`` app."""
    app.command("simulate")(simulate_command)


def _rate(flag: str, what: str) -> Any:
    return typer.Option(flag, metavar="P", help=f"{what} (0 to 1).")


def simulate_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH...",
            help="Campaign files, or folders searched for *.nurture (scoring and segments too).",
            show_default=False,
        ),
    ],
    leads: Annotated[
        int | None,
        typer.Option(
            "--leads",
            metavar="N",
            help=f"How many leads arrive on day one (default {DEFAULT_LEADS}; "
            "with --profile: every row).",
            show_default=False,
        ),
    ] = None,
    days: Annotated[int, typer.Option("--days", metavar="D", help="Days to simulate.")] = 90,
    seed: Annotated[int, typer.Option("--seed", metavar="S", help="Random seed.")] = 0,
    campaign: Annotated[
        list[str] | None,
        typer.Option(
            "--campaign",
            "-c",
            metavar="NAME",
            help="The campaign new leads enter (repeatable; default: every campaign).",
            show_default=False,
        ),
    ] = None,
    open_rate: Annotated[
        float, _rate("--open-rate", "Chance a delivered message is opened")
    ] = 0.35,
    click_rate: Annotated[
        float, _rate("--click-rate", "Chance an opened message is clicked")
    ] = 0.25,
    reply_rate: Annotated[
        float, _rate("--reply-rate", "Chance a delivered message is replied to")
    ] = 0.02,
    event_rate: Annotated[
        float, _rate("--event-rate", "Chance a click leads to a custom event")
    ] = 0.1,
    unsubscribe_rate: Annotated[
        float, _rate("--unsubscribe-rate", "Chance a delivered message unsubscribes")
    ] = 0.0,
    bounce_rate: Annotated[
        float,
        _rate(
            "--bounce-rate",
            "Chance a message bounces hard: its channel closes for the lead, the flow goes on",
        ),
    ] = 0.0,
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile",
            metavar="FILE.csv",
            help="Leads from a CSV file (header row of field names) instead of synthetic ones.",
            show_default=False,
        ),
    ] = None,
    global_cap: Annotated[
        str | None,
        typer.Option(
            "--global-cap",
            metavar="CAP",
            help="Touches a lead may get from all campaigns together, e.g. '5 per week', or "
            "'none' (default: NURTURE_GLOBAL_CAP or nurture.toml, as in production).",
            show_default=False,
        ),
    ] = None,
    accept_rate: Annotated[
        float,
        typer.Option(
            "--accept-rate",
            metavar="P",
            help="Share of MQLs the salesperson they are routed to accepts (0 to 1); the "
            "others run out the routing's SLA.",
        ),
    ] = 0.7,
    accept_after: Annotated[
        str,
        typer.Option(
            "--accept-after",
            metavar="MIN..MAX",
            help="How long a salesperson takes to accept, drawn evenly between MIN and MAX, "
            "e.g. 6h..48h, 30m..2d, or one time: 4h.",
        ),
    ] = "6h..48h",
    trace: Annotated[
        bool,
        typer.Option(
            "--trace",
            help="Also print every MQL's assignment, acceptance, reassignment and escalation "
            "with its reason, in time order (with --json: the report's trace list).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            metavar="N",
            help="Processes to share the leads between (default: every core); the report "
            "is the same whatever N is. Under 250 leads a process, fewer are used.",
            show_default=False,
        ),
    ] = None,
    graph: Annotated[
        Path | None,
        typer.Option(
            "--graph",
            metavar="OUT",
            help="Also draw the campaigns with this run's numbers on each step and branch, "
            "to OUT: .svg, .dot (or .gv) or .mmd (Mermaid), by its suffix.",
            show_default=False,
        ),
    ] = None,
    templates: TemplatesOption = None,
) -> None:
    """Run campaigns over simulated leads on a virtual clock, with the real engine.

    Prints per-step reach (entered, sent, deferred, opened, clicked), touches per
    lead, the most touches in any 7 days, MQLs and days to MQL (and the MQLs of
    each campaign: its mql steps', and the MQL rule's while a lead is in it),
    exits by reason and the leads still in flight. With a routing among the
    files, MQLs go to sales by it, and simulated salespeople accept a share of
    them (--accept-rate, after --accept-after); the others run out the SLA and
    are reassigned or escalated as the routing says (the handoff section).
    --json prints one object with the keys leads, days, seed, campaigns (each
    with its mql count), steps (each with its reach, its exits and, out of a
    branch, split or repeat, how many took each way), touches_per_lead, max_touches_7d, mql, exits,
    in_flight, handoff (and more). The same seed always gives the same numbers.
    """
    rates = Rates(open_rate, click_rate, reply_rate, event_rate, unsubscribe_rate, bounce_rate)
    wanted = DEFAULT_LEADS if leads is None else leads
    after = _accept_after(accept_after)
    problems = Settings(
        leads=wanted, days=days, seed=seed, rates=rates, accept_rate=accept_rate, accept_after=after
    ).problems()
    if jobs is not None and jobs < 1:
        problems.append(f"--jobs must be at least 1 (got {jobs})")
    if graph is not None and format_of(graph) is None:
        problems.append(f"--graph {graph}: write a file ending in .svg, .dot, .gv or .mmd")
    if problems:
        _fail("; ".join(problems))
    cap = _global_cap(global_cap)
    program = _load(paths, templates)
    entry = _entry(program, campaign or [], paths)
    people, count = _people(profile, program, wanted if profile is None or leads else None)
    settings = Settings(
        leads=count,
        days=days,
        seed=seed,
        rates=rates,
        entry=entry,
        global_cap=cap,
        accept_rate=accept_rate,
        accept_after=after,
    )
    lines: list[str] = []
    try:
        with _progress(count) as tell:
            data = simulate_jobs(
                program, settings, people, jobs or cores(), tell, lines.append if trace else None
            )
    except KeyboardInterrupt:
        _fail("interrupted: nothing printed", code=130)
    except BrokenProcessPool:
        _fail(
            "a simulating process died (out of memory?): nothing printed; try fewer --jobs", code=1
        )
    if graph is not None:
        write_picture(graph, list(program.campaigns.values()), data)
    data["profile"] = None if profile is None else str(profile)
    if cap is not None:
        data["global_cap"] = describe_cap(cap)
    if as_json:
        if trace:
            data["trace"] = lines
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        for line in lines:
            typer.echo(line)
        render(data, _stdout())


def write_picture(out: Path, graphs: list[StepGraph], data: dict[str, Any]) -> None:
    """Draw `graphs` with the report's numbers to `out`, in the format its suffix names."""
    form = format_of(out) or "svg"
    text = draw(graphs, numbers(data), form)
    _write(_svg(text) if form == "svg" else text, out)


def _accept_after(text: str) -> tuple[timedelta, timedelta]:
    """`6h..48h` (or one time, `4h`) as the shortest and longest time to accept."""
    from nurture.runtime.embedded import parse_duration

    low, _, high = text.partition("..")
    try:
        return parse_duration(low), parse_duration(high or low)
    except ValueError as e:
        _fail(f"--accept-after {text!r}: {e}; write a range such as 6h..48h")


def _load(paths: list[Path], templates: list[Path] | None) -> CompiledProgram:
    """Check and compile; on errors print them as `nurture check` does (on stderr) and exit 1."""
    roots = _template_roots(templates or [])
    sources = _read_all(_collect(paths))
    analysis = analyze(sources, FileTemplates(roots))
    if analysis.program is None or analysis.errors:
        _report(analysis, len(sources), sys.stderr)
        raise typer.Exit(1)
    _print_diagnostics(analysis.diagnostics, sys.stderr)
    program = compile_program(analysis.program)
    if not program.campaigns:
        _fail(f"no campaign to simulate in {', '.join(str(p) for p in paths)}")
    return program


def _global_cap(text: str | None) -> Cap | None:
    """The cap over all campaigns: `--global-cap`, else the one production would apply."""
    try:
        if text is None:
            return RuntimeSettings.load().global_cap
        if text.strip().lower() == "none":
            return None
        return parse_cap(text, "--global-cap")
    except ConfigError as e:
        _fail(str(e))


def _entry(program: CompiledProgram, names: list[str], paths: list[Path]) -> tuple[str, ...]:
    unknown = [n for n in names if n not in program.campaigns]
    if unknown:
        known = ", ".join(json.dumps(n, ensure_ascii=False) for n in program.campaigns)
        wanted = ", ".join(json.dumps(n, ensure_ascii=False) for n in unknown)
        where = ", ".join(str(p) for p in paths)
        _fail(f"no campaign {wanted} in {where}; campaigns: {known}")
    return tuple(dict.fromkeys(names))


def _people(
    profile: Path | None, program: CompiledProgram, count: int | None
) -> tuple[list[Profile] | None, int]:
    """The profile's rows (at most `count`), or None for `count` synthetic ones; how many."""
    if profile is None:
        assert count is not None
        return None, count
    if not profile.is_file():
        _fail(f"--profile {profile}: {'not a file' if profile.exists() else 'no such file'}")
    try:
        rows = load_profile(profile, program.fields)
    except ProfileError as e:
        _fail(str(e))
    rows = rows if count is None else rows[:count]
    return rows, len(rows)


@contextmanager
def _progress(leads: int) -> Iterator[Callable[[float], None]]:
    """A progress bar over the simulated leads on stderr (only on a terminal)."""
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("simulating"),
        BarColumn(),
        TextColumn("lead {task.completed:,.0f} of {task.total:,.0f}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = bar.add_task("simulate", total=leads)
    with bar:
        yield lambda share: bar.update(task, completed=share * leads)


def _stdout() -> Console:
    tty = sys.stdout.isatty()
    return Console(
        file=sys.stdout,
        highlight=False,
        emoji=False,
        color_system="auto" if tty else None,
        force_terminal=tty,
        width=None if tty else WIDE,
    )
