"""``nurture check`` and ``nurture graph``: the campaign language on the command line.

Exit codes: 0 clean (warnings allowed unless ``--strict``), 1 problems in the
campaigns (or Graphviz missing for ``--format svg``), 2 bad usage: a missing
path, no ``.nurture`` file, a file that is not UTF-8 text, an unknown campaign.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TextIO

import typer

from dsl import Analysis, Diagnostic, FileTemplates, analyze

if TYPE_CHECKING:  # imported where used: `check` of a clean file needs neither
    from rich.console import Console

    from dsl.draw import Numbers
    from dsl.graph import CompiledProgram, StepGraph

SUFFIX = ".nurture"
USAGE = 2
"""Exit code for bad usage, as Click uses for a bad option."""

NO_GRAPHVIZ = (
    "Graphviz is not installed: install it (e.g. apt-get install graphviz) or use --format mermaid"
)


class CheckFormat(StrEnum):
    text = "text"
    json = "json"


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    dot = "dot"
    svg = "svg"


class Counts(StrEnum):
    simulate = "simulate"
    live = "live"


TemplatesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--templates",
        metavar="DIR",
        help="Another folder of templates, searched after <campaign dir>/templates/ (repeatable).",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    """Add ``check`` and ``graph`` to the main ``nurture`` app."""
    app.command("check")(check)
    app.command("graph")(graph)


# ---------------------------------------------------------------- commands


def check(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH...",
            help="Campaign files, or folders searched for *.nurture; all are checked together.",
            show_default=False,
        ),
    ],
    output: Annotated[
        CheckFormat, typer.Option("--format", help="text, or json: a list of diagnostics.")
    ] = CheckFormat.text,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")] = False,
    templates: TemplatesOption = None,
) -> None:
    """Check campaign files: syntax, templates, names, loops, caps. Exit 1 on any error."""
    roots = _template_roots(templates or [])
    sources = _read_all(_collect(paths))
    analysis = analyze(sources, FileTemplates(roots))
    if output is CheckFormat.json:
        data = [d.to_json() for d in analysis.diagnostics]
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        _report(analysis, len(sources), sys.stdout)
    raise typer.Exit(1 if analysis.failed(strict) else 0)


def graph(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="A .nurture file, or a folder (then pick one with --campaign).",
            show_default=False,
        ),
    ],
    campaign: Annotated[
        str | None,
        typer.Option("--campaign", "-c", metavar="NAME", help="Draw only this campaign."),
    ] = None,
    output: Annotated[
        GraphFormat, typer.Option("--format", help="mermaid, dot (Graphviz) or svg.")
    ] = GraphFormat.mermaid,
    out: Annotated[
        Path | None,
        typer.Option("-o", "--output", metavar="OUT", help="Write here instead of stdout."),
    ] = None,
    counts: Annotated[
        Counts | None,
        typer.Option(
            "--counts",
            help="Numbers on each step and branch: simulate (a dry run of the file's "
            "campaigns, with --leads, --days, --seed, --jobs, --open-rate, --click-rate as "
            "`nurture simulate` takes them), or live (production's, from the database at "
            "--url, for the deployed version the file writes).",
            show_default=False,
        ),
    ] = None,
    leads: Annotated[
        int, typer.Option("--leads", metavar="N", help="With --counts simulate: how many leads.")
    ] = 1000,
    days: Annotated[
        int, typer.Option("--days", metavar="D", help="With --counts simulate: days to simulate.")
    ] = 90,
    seed: Annotated[
        int, typer.Option("--seed", metavar="S", help="With --counts simulate: random seed.")
    ] = 0,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            metavar="N",
            help="With --counts simulate: processes (default: every core).",
            show_default=False,
        ),
    ] = None,
    open_rate: Annotated[
        float,
        typer.Option("--open-rate", metavar="P", help="With --counts simulate: chance of an open."),
    ] = 0.35,
    click_rate: Annotated[
        float,
        typer.Option(
            "--click-rate", metavar="P", help="With --counts simulate: chance an open is clicked."
        ),
    ] = 0.25,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="DB",
            help="With --counts live: database URL (default: $NURTURE_DATABASE_URL).",
            show_default=False,
        ),
    ] = None,
    templates: TemplatesOption = None,
) -> None:
    """Draw campaigns as a flowchart: Mermaid (default), Graphviz DOT or SVG.

    With --counts simulate, each step shows its reach in a dry run (entered,
    sent, opened, clicked, deferred, exits) and each way out of a branch,
    split or repeat how many leads took it. With --counts live, each step
    shows what the database records of it: touches written (entered), sent,
    deferred, opened, clicked, and exits where exited enrollments stand, and
    each way out of a branch, split or repeat how many leads took it (as the
    workers counted them).
    """
    from dsl.draw import to_dot_many, to_mermaid_many

    roots = _template_roots(templates or [])
    program, drawn = _compile(file, FileTemplates(roots))
    graphs = _choose(drawn, campaign, file)
    numbers = None
    if counts is Counts.simulate:
        from nurture.simulate.picture import simulated_numbers

        try:
            numbers = simulated_numbers(program, leads, days, seed, jobs, open_rate, click_rate)
        except ValueError as e:
            _fail(str(e))
    elif counts is Counts.live:
        numbers = _live(graphs, url)
    if output is GraphFormat.mermaid:
        text = to_mermaid_many(graphs, numbers)
    elif output is GraphFormat.dot:
        text = to_dot_many(graphs, numbers)
    else:
        text = _svg(to_dot_many(graphs, numbers))
    _write(text, out)


# ---------------------------------------------------------------- reading sources


def _collect(paths: Iterable[Path]) -> list[Path]:
    """The files named, and every *.nurture under the folders named, sorted, each once."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            try:
                files.extend(sorted(p for p in path.rglob(f"*{SUFFIX}") if p.is_file()))
            except OSError as e:
                _fail(f"cannot read {path}: {e.strerror or e}")
        elif path.is_file():
            files.append(path)
        elif path.exists():
            _fail(f"not a file or folder: {path}")
        else:
            _fail(f"no such file or folder: {path}")
    if not files:
        _fail(f"no {SUFFIX} files found in {', '.join(str(p) for p in paths)}")
    seen: set[Path] = set()
    unique = []
    for file in files:
        key = file.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(file)
    return unique


def _read_all(files: Sequence[Path]) -> dict[str, str]:
    return {str(file): _read(file) for file in files}


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        _fail(f"cannot read {file}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at {e.start})")
    except OSError as e:
        _fail(f"cannot read {file}: {e.strerror or e}")


def _template_roots(dirs: Sequence[Path]) -> tuple[Path, ...]:
    for folder in dirs:
        if not folder.is_dir():
            what = "not a folder" if folder.exists() else "no such folder"
            _fail(f"--templates {folder}: {what}")
    return tuple(dirs)


# ---------------------------------------------------------------- graph helpers


def _compile(file: Path, templates: FileTemplates) -> tuple[CompiledProgram, list[StepGraph]]:
    """The program `file` is checked in, and the campaigns to draw from `file`.

    A file is checked with the other *.nurture files in its folder, so that
    `enroll "Product drip"` finds its target; when only those other files have
    errors, the file is drawn on its own if it is clean alone.
    """
    if file.is_dir():
        sources = _read_all(_collect([file]))
        drawn = set(sources)
    elif file.is_file():
        sources = {str(file): _read(file)}
        drawn = set(sources)
        for sibling in sorted(file.parent.glob(f"*{SUFFIX}")):
            if sibling.is_file() and sibling.resolve() != file.resolve():
                try:
                    sources[str(sibling)] = sibling.read_text(encoding="utf-8-sig")
                except (OSError, UnicodeDecodeError):
                    continue  # a neighbour we cannot read is not this file's problem
    else:
        _fail(f"no such file or folder: {file}")
    analysis = analyze(sources, templates)
    if analysis.errors and not any(d.span.path in drawn for d in analysis.errors):
        alone = analyze({p: sources[p] for p in drawn}, templates)
        if not alone.errors:
            analysis = alone
    if analysis.program is None or analysis.errors:
        _report(analysis, len(sources), sys.stderr)
        raise typer.Exit(1)
    _print_diagnostics(analysis.diagnostics, sys.stderr)
    from dsl import compile_program

    program = compile_program(analysis.program)
    return program, [g for g in program.campaigns.values() if g.path in drawn]


def _live(graphs: list[StepGraph], url: str | None) -> dict[str, Numbers]:
    """Production's numbers for `graphs`; exit 2 naming a campaign not deployed as written."""
    from nurture.cli.report import _session
    from nurture.live_counts import NotDeployed, live_numbers

    with _session(url) as session:
        try:
            return live_numbers(session, graphs)
        except NotDeployed as e:
            _fail(str(e))


def _choose(graphs: list[StepGraph], name: str | None, file: Path) -> list[StepGraph]:
    if not graphs:
        _fail(f"{file} has no campaign to draw")
    if name is None:
        return graphs
    chosen = [g for g in graphs if g.name == name]
    if not chosen:
        known = ", ".join(json.dumps(g.name, ensure_ascii=False) for g in graphs)
        _fail(f"no campaign {json.dumps(name, ensure_ascii=False)} in {file}; campaigns: {known}")
    return chosen


def _svg(dot_source: str) -> str:
    """Run Graphviz's `dot -Tsvg`; exit 1 with a clear message when it is missing or fails."""
    dot = shutil.which("dot")
    if dot is None:
        _fail(NO_GRAPHVIZ, code=1)
    try:
        done = subprocess.run(
            [dot, "-Tsvg"], input=dot_source.encode("utf-8"), capture_output=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        _fail(f"Graphviz failed: {e}", code=1)
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        _fail(f"Graphviz failed: {why[0] if why else f'exit {done.returncode}'}", code=1)
    return done.stdout.decode("utf-8", "replace")


def _write(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        _fail(f"cannot write {out}: {e.strerror or e}")


# ---------------------------------------------------------------- printing


def _report(analysis: Analysis, files: int, stream: TextIO) -> None:
    """Every diagnostic, then `3 files: 2 errors, 1 warning` (plain text: Rich is not needed)."""
    _print_diagnostics(analysis.diagnostics, stream)
    stream.write(summary(files, len(analysis.errors), len(analysis.warnings)) + "\n")
    stream.flush()


def summary(files: int, errors: int, warnings: int) -> str:
    """`3 files: 2 errors, 1 warning`, or `4 files: no problems`."""
    counts = [_plural(errors, "error")] if errors else []
    counts += [_plural(warnings, "warning")] if warnings else []
    return f"{_plural(files, 'file')}: {', '.join(counts) or 'no problems'}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _print_diagnostics(diagnostics: Sequence[Diagnostic], stream: TextIO) -> None:
    if not diagnostics:
        return  # Rich (tens of milliseconds to import) only when there is something to colour
    from rich.text import Text

    console = _console(stream)
    for d in diagnostics:
        text = Text(d.render())
        marker = f": {d.severity}:"
        start = text.plain.find(marker)
        if start >= 0:
            style = "bold red" if d.is_error else "bold yellow"
            text.stylize(style, start + 2, start + len(marker) - 1)
        console.print(text)
        console.print()


def _console(stream: TextIO) -> Console:
    """A console on `stream` that colours only a terminal and never wraps."""
    from rich.console import Console

    tty = stream.isatty()
    return Console(
        file=stream,
        highlight=False,
        soft_wrap=True,
        emoji=False,
        color_system="auto" if tty else None,
        force_terminal=tty,
    )


def _fail(message: str, code: int = USAGE) -> NoReturn:
    """Print `error: message` on stderr and exit with `code`."""
    from rich.text import Text

    text = Text("error:", style="bold red")
    text.append(f" {message}")
    _console(sys.stderr).print(text)
    raise typer.Exit(code)
