"""``nurture deploy``: check, compile and store campaigns as versions, in one transaction.

Exit codes: 0 deployed (or nothing changed), 1 problems in the campaigns, a
refused step map or an unusable database (nothing is stored), 2 bad usage
as for ``nurture check`` (a missing path or map file).
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from alembic.migration import MigrationContext
from rich.table import Table
from rich.text import Text
from sqlalchemy import Connection, pool
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dsl import FileTemplates, analyze, compile_program
from nurture import db
from nurture.cli import db as cli_db
from nurture.cli import lang as cli_lang
from nurture.store.deploy import (
    REVERTED,
    DeployError,
    Item,
    Outcome,
    StepMap,
    deploy,
    items_of,
    preview,
)
from nurture.store.migrating import _VERSION_KEY as VERSION_KEY
from nurture.store.migrating import KEEP, MOVE, REFUSED, STAY, VersionPlan

HASH_CHARS = 12


class _Refused(Exception):
    """Raised inside the transaction to roll it back and exit 1 with a message."""


def register(app: typer.Typer) -> None:
    """Add ``deploy`` to the main ``nurture`` app."""
    app.command("deploy")(deploy_command)


def deploy_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH...",
            help="Campaign files, or folders searched for *.nurture; deployed together.",
            show_default=False,
        ),
    ],
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="DB",
            help="Database URL (default: $NURTURE_DATABASE_URL or sqlite:///nurture.db).",
        ),
    ] = None,
    templates: cli_lang.TemplatesOption = None,
    migrate: Annotated[
        Path | None,
        typer.Option(
            "--migrate",
            metavar="MAP",
            help="JSON or TOML {campaign: {old_step: new_step}}: move leads in flight "
            "from the previous version to the new one.",
            show_default=False,
        ),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse on warnings too.")] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print what would change and where each lead in flight would move; "
            "store nothing (exit 1 if the deploy would be refused).",
        ),
    ] = False,
) -> None:
    """Deploy campaigns: each changed campaign becomes a new version; leads in flight stay,
    unless --migrate moves them."""
    roots = cli_lang._template_roots(templates or [])
    sources = cli_lang._read_all(cli_lang._collect(paths))
    analysis = analyze(sources, FileTemplates(roots))
    if analysis.program is None or analysis.failed(strict):
        cli_lang._report(analysis, len(sources), sys.stderr)
        raise typer.Exit(1)
    cli_lang._print_diagnostics(analysis.diagnostics, sys.stderr)
    step_map = read_step_map(migrate) if migrate is not None else None
    compiled = compile_program(analysis.program)
    items = items_of(analysis.program, compiled, sources)
    target = url or db.database_url()
    if dry_run:
        outcomes, problems = _store(target, items, step_map, datetime.now(UTC), dry_run=True)
        _print_dry_run(outcomes, problems, target, step_map is not None)
        if problems:
            raise typer.Exit(1)
        return
    outcomes, _ = _store(target, items, step_map, datetime.now(UTC))
    _print_outcomes(outcomes, target)


# ---------------------------------------------------------------- the step map


def read_step_map(path: Path) -> dict[str, dict[str, Any]]:
    """The ``--migrate`` file, JSON or TOML by its suffix (else whichever parses).

    Per campaign, ``{old_step: new_step}`` (from the version current before the
    deploy), ``"vN"`` tables of the same for older versions, or ``"vN" = "keep"``.
    """
    text = cli_lang._read(path)
    data = _parse_map(text, path)
    if not isinstance(data, dict):
        _refuse(f"--migrate {path}: expected a table of campaigns, found {type(data).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for campaign, steps in data.items():
        if not isinstance(steps, dict):
            _refuse(f"--migrate {path}: {campaign!r} should map old step ids to new ones")
        out[str(campaign)] = {}
        for key, value in steps.items():
            if VERSION_KEY.fullmatch(str(key)) and (value == KEEP or isinstance(value, dict)):
                value = value if value == KEEP else _steps(path, campaign, key, value)
            elif not isinstance(value, str):
                _refuse(f"--migrate {path}: {campaign!r}: step {key!r} should map to a step id")
            out[str(campaign)][str(key)] = value
    return out


def _steps(path: Path, campaign: str, version: str, steps: dict[Any, Any]) -> dict[str, str]:
    bad = [k for k, v in steps.items() if not isinstance(v, str)]
    if bad:
        _refuse(
            f"--migrate {path}: {campaign!r} {version}: step {bad[0]!r} should map to a step id"
        )
    return {str(k): v for k, v in steps.items()}


_PARSERS: dict[str, Callable[[str], Any]] = {"JSON": json.loads, "TOML": tomllib.loads}


def _parse_map(text: str, path: Path) -> Any:
    formats = {".json": ["JSON"], ".toml": ["TOML"]}.get(path.suffix.lower(), ["JSON", "TOML"])
    why = ""
    for name in formats:
        try:
            return _PARSERS[name](text)
        except ValueError as e:  # JSONDecodeError and TOMLDecodeError are ValueErrors
            why = why or str(e)
    _refuse(f"--migrate {path}: not valid {' or '.join(formats)}: {why}")


# ---------------------------------------------------------------- the database


def _store(
    target: str, items: list[Item], step_map: StepMap | None, now: datetime, dry_run: bool = False
) -> tuple[list[Outcome], list[str]]:
    """Deploy in one transaction (or, `dry_run`, plan it and roll it back)."""
    where = cli_db._redacted(target)
    try:
        parsed = db.normalize_url(target)
        file = parsed.database if parsed.get_backend_name() == "sqlite" else None
        if file not in (None, "", ":memory:") and not Path(str(file)).is_file():
            _refuse(f"cannot deploy to {where}: no database there; run `nurture db upgrade`")
        engine = db.make_engine(parsed, poolclass=pool.NullPool)
        try:
            with engine.connect() as connection:
                _check_schema(connection, where)
                if dry_run:
                    with Session(bind=connection) as session:
                        try:
                            return preview(session, items, now, step_map=step_map)
                        finally:
                            session.rollback()
                with Session(bind=connection) as session, session.begin():
                    return deploy(session, items, now, step_map=step_map), []
        finally:
            engine.dispose()
    except DeployError as e:
        _refuse(str(e))
    except IntegrityError:
        _refuse(
            f"cannot deploy to {where}: another deploy changed the same campaigns at the "
            "same time; nothing was stored, run it again"
        )
    except cli_db._FAILURES as e:
        _refuse(f"cannot deploy to {where}: {cli_db._why(e)}")


def _check_schema(connection: Connection, where: str) -> None:
    head = db.head_revision()
    revision = MigrationContext.configure(connection).get_current_revision()
    if revision is None:
        _refuse(f"cannot deploy to {where}: it has no nurture schema; run `nurture db upgrade`")
    if revision != head:
        _refuse(
            f"cannot deploy to {where}: its schema is at revision {revision}, "
            f"this nurture needs {head}; run `nurture db upgrade`"
        )
    connection.rollback()  # end the reads' transaction; the deploy begins its own


# ---------------------------------------------------------------- printing


def _print_outcomes(outcomes: Sequence[Outcome], target: str) -> None:
    console = cli_lang._console(sys.stdout)
    table = Table("kind", "name", "version", "hash", "status", box=None, pad_edge=False)
    for o in outcomes:
        status = f"{o.status} (was v{o.previous})" if o.status == REVERTED else o.status
        style = {"new": "green", "changed": "yellow", "reverted": "yellow"}.get(o.status, "")
        table.add_row(o.kind, o.name, f"v{o.version}", o.hash[:HASH_CHARS], Text(status, style))
    console.print(table)
    for o in outcomes:
        for p in o.plans:
            what = "enrollment" if p.in_flight == 1 else "enrollments"
            if p.action == MOVE:
                line = f'moved {p.in_flight} {what} of "{o.name}" from v{p.version} to v{o.version}'
            elif p.action == KEEP:
                line = f'kept {p.in_flight} {what} of "{o.name}" on v{p.version}, as the map says'
            elif o.status != "unchanged":
                line = f'{p.in_flight} {what} of "{o.name}" stay on v{p.version}'
            else:
                continue
            console.print(Text(line))
    counts = {s: sum(o.status == s for o in outcomes) for s in ("new", "changed", "reverted")}
    stored = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "nothing changed"
    console.print(Text(f"deployed to {cli_db._redacted(target)}: {stored}"))


def _print_dry_run(
    outcomes: Sequence[Outcome], problems: Sequence[str], target: str, mapped: bool
) -> None:
    """Per campaign and older version: the leads in flight at each step and where they go."""
    console = cli_lang._console(sys.stdout)
    for o in outcomes:
        if o.kind != "campaign":
            continue
        was = f" (was v{o.previous})" if o.previous is not None and o.status != "unchanged" else ""
        console.print(Text(f'campaign "{o.name}": {o.status}, v{o.version}{was}'))
        for p in o.plans:
            console.print(_plan_table(p, mapped))
            for line in p.why:
                console.print(Text(f"  {line}"))
    others = [o for o in outcomes if o.kind != "campaign" and o.status != "unchanged"]
    for o in others:
        console.print(Text(" ".join(x for x in (o.kind, o.name) if x) + f": {o.status}"))
    for problem in problems:
        if not any(problem in p.why for o in outcomes for p in o.plans):
            console.print(Text(problem))
    verdict = "would be refused" if problems else "would be stored"
    where = cli_db._redacted(target)
    console.print(Text(f"dry run on {where}: nothing was changed; the deploy {verdict}"))


_ACTIONS = {
    MOVE: "move to v{target}",
    KEEP: "stay on v{version} (the map keeps them)",
    STAY: "stay on v{version} (the map does not name the campaign)",
    REFUSED: "cannot move",
}


def _plan_table(p: VersionPlan, mapped: bool) -> Table:
    action = _ACTIONS[p.action].format(target=p.target, version=p.version)
    if p.action == STAY and not mapped:
        action = f"stay on v{p.version} (no --migrate map)"
    title = f"  v{p.version}: {p.in_flight} in flight, {action}"
    table = Table("step", "kind", "line", "leads", "goes to", title=title, title_justify="left")
    for s in p.steps:
        if p.action == MOVE:
            goes = f"v{p.target} {s.target}"
        elif p.action == REFUSED:
            goes = f"v{p.target} {s.target}" if s.target else "not mapped"
        else:
            goes = f"stays at v{p.version} {s.step}"
        line = "" if s.line is None else str(s.line)
        table.add_row(s.step, s.kind, line, f"{s.enrollments:,}", goes)
    return table


def _refuse(message: str) -> NoReturn:
    """Print `error: message` (every line) on stderr and exit 1."""
    cli_lang._fail(message, code=1)
