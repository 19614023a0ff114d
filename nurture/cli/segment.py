"""``nurture segment count|export``: the leads a segment or a ``--where`` expression selects.

Where the condition comes from:

- ``--where EXPR`` is checked like a segment, with the custom fields of the
  files given as PATH...; without PATH, with the deployed ``fields`` (or, when
  none are deployed, those in ``./campaigns/``).
- ``NAME`` with PATH... is the segment of that name in those files: what you
  see is what you count, deployed or not.
- ``NAME`` without PATH is the deployed segment (what the running engine
  uses); ``./campaigns/`` is read only when no segment of that name is
  deployed.

Exit codes: 0 done; 1 problems in the expression or the campaign files, or a
database that cannot be read; 2 bad usage: no NAME or --where, an unknown
segment or field, a missing path.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TextIO, TypeVar

import typer
from alembic.migration import MigrationContext
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text
from sqlalchemy import Connection, event, pool
from sqlalchemy.orm import Session

from dsl import analyze, compile_program
from dsl.graph import Json
from dsl.vocabulary import suggest
from nurture import db
from nurture.cli import db as cli_db
from nurture.cli import lang as cli_lang
from nurture.segments import (
    DEFAULT_FIELDS,
    WhereError,
    count,
    export,
    fields_source,
    known_fields,
    parse_where,
    sizes,
)
from nurture.segments.export import IDENTITY, SCORES
from nurture.store.definitions import active, active_segments

T = TypeVar("T")

CAMPAIGNS = Path("campaigns")
"""The project folder read when no PATH is given and nothing is deployed."""

app = typer.Typer(
    help="Count and export the leads a segment (or a --where expression) selects.",
    no_args_is_help=True,
)


class Format(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


Args = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="[NAME] [PATH...]",
        help="A segment name (not with --where), then campaign files or folders to read it from.",
        show_default=False,
    ),
]
Where = Annotated[
    str | None,
    typer.Option(
        "--where",
        metavar="EXPR",
        help="A condition instead of a segment, e.g. 'tagged \"industry:saas\" and score >= 50'.",
        show_default=False,
    ),
]
Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        metavar="DB",
        help="Database URL (default: $NURTURE_DATABASE_URL or sqlite:///nurture.db).",
        show_default=False,
    ),
]


def register(main: typer.Typer) -> None:
    """Add ``segment count`` and ``segment export`` to the main ``nurture`` app."""
    main.add_typer(app, name="segment")


@dataclass(frozen=True, slots=True)
class Chosen:
    """The condition to run, where it came from, and the custom fields known there."""

    cond: Json
    origin: str
    custom: Mapping[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- commands


@app.command("count")
def count_command(args: Args = None, where: Where = None, url: Url = None) -> None:
    """Print how many leads the segment holds.

    NAME is the deployed segment (./campaigns/'s if none is deployed by that
    name), or the one in PATH... when given; --where EXPR is a condition
    written as a segment line, checked with the project's custom fields.
    """
    with _connected(url) as connection:
        chosen = _choose(connection, args or [], where)
        total = _run(lambda: count(connection, chosen.cond, datetime.now(UTC)))
    typer.echo(str(total))


@app.command("export")
def export_command(
    args: Args = None,
    where: Where = None,
    output_format: Annotated[
        Format, typer.Option("--format", help="csv (tags joined by ';') or jsonl.")
    ] = Format.csv,
    fields: Annotated[
        list[str] | None,
        typer.Option(
            "--fields",
            metavar="FIELD,...",
            help=f"Profile fields to include (default: {','.join(DEFAULT_FIELDS)}); "
            "standard or custom, comma-separated or repeated.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", metavar="FILE", help="Write here instead of stdout."),
    ] = None,
    url: Url = None,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="A progress bar on stderr (default: when stderr is a terminal).",
            show_default=False,
        ),
    ] = None,
    escape_formulas: Annotated[
        bool,
        typer.Option(
            "--escape-formulas/--no-escape-formulas",
            help="In CSV, put ' before text starting with = + - @, a tab or CR, so a "
            "spreadsheet shows it rather than running it as a formula (OWASP).",
        ),
    ] = True,
) -> None:
    """Stream the segment's leads: id, identity, profile fields, tags, scores and stage.

    NAME, PATH... and --where choose the leads as for `segment count`. Rows go
    by lead id to stdout or FILE; a summary goes to stderr.
    """
    with _connected(url, serial=True) as connection:
        chosen = _choose(connection, args or [], where)
        names = _fields(fields, chosen.custom)
        now = datetime.now(UTC)
        found = _run(lambda: sizes(connection, chosen.cond, now))
        show = sys.stderr.isatty() if progress is None else progress
        with _target(output) as out, _progress(found.segment, show) as advance:
            written = _run(
                lambda: export(
                    connection,
                    chosen.cond,
                    now,
                    out,
                    fields=names,
                    format="csv" if output_format is Format.csv else "jsonl",
                    progress=advance,
                    expected=found,
                    escape_formulas=escape_formulas,
                )
            )
    where_to = f" to {output}" if output is not None else ""
    _note(f"exported {written:,} {'lead' if written == 1 else 'leads'}{where_to} ({chosen.origin})")


# ---------------------------------------------------------------- the condition


def _choose(connection: Connection, args: Sequence[str], where: str | None) -> Chosen:
    if where is not None:
        if not where.strip():
            cli_lang._fail("--where needs a condition, e.g. --where 'tagged \"customer\"'")
        for arg in args:
            if not Path(arg).exists():
                cli_lang._fail(
                    f"no such file or folder: {arg} (with --where, the arguments are PATHs; "
                    "a segment is named without --where)"
                )
        custom, sources = _project(connection, [Path(a) for a in args])
        try:
            cond, warnings = parse_where(where, sources)
        except WhereError as e:
            cli_lang._print_diagnostics(e.diagnostics, sys.stderr)
            raise typer.Exit(1) from None
        cli_lang._print_diagnostics(warnings, sys.stderr)
        return Chosen(cond, "--where", custom)
    if not args:
        cli_lang._fail("name a segment, or give a condition with --where EXPR")
    name, paths = args[0], [Path(a) for a in args[1:]]
    if paths:
        return _from_files(name, paths, ", ".join(map(str, paths)))
    with Session(bind=connection) as session:
        deployed = active_segments(session)
        fields = active(session, "fields")
    connection.rollback()
    if name in deployed:
        custom = dict(fields.body) if fields is not None else {}
        return Chosen(deployed[name], f'segment "{name}", deployed', custom)
    if CAMPAIGNS.is_dir():
        return _from_files(name, [CAMPAIGNS], f"{CAMPAIGNS}/", deployed)
    _unknown(
        name,
        deployed,
        "is deployed (and there is no ./campaigns/ folder)",
        "deployed segments",
        "\nhint: deploy it with `nurture deploy`, or name its files: "
        "`nurture segment count NAME PATH...`",
    )


def _from_files(
    name: str, paths: Sequence[Path], where: str, deployed: Mapping[str, Json] | None = None
) -> Chosen:
    sources = cli_lang._read_all(cli_lang._collect(paths))
    analysis = analyze(sources)
    if analysis.program is None or analysis.errors:
        cli_lang._report(analysis, len(sources), sys.stderr)
        raise typer.Exit(1)
    compiled = compile_program(analysis.program)
    if name not in compiled.segments:
        known = {*compiled.segments, *(deployed or {})}
        label = "segments there" + (" and deployed" if deployed else "")
        _unknown(name, known, f"in {where}" + (" nor deployed" if deployed else ""), label)
    return Chosen(compiled.segments[name], f'segment "{name}" from {where}', compiled.fields)


def _project(
    connection: Connection, paths: Sequence[Path]
) -> tuple[dict[str, str], dict[str, str]]:
    """The custom fields and the sources a --where expression is checked with."""
    if paths:
        sources = cli_lang._read_all(cli_lang._collect(paths))
        return _declared(sources), sources
    with Session(bind=connection) as session:
        deployed = active(session, "fields")
    connection.rollback()
    if deployed is not None:
        custom = {str(k): str(v) for k, v in dict(deployed.body).items()}
        return custom, {"<deployed fields>": fields_source(custom)}
    if CAMPAIGNS.is_dir() and any(CAMPAIGNS.rglob(f"*{cli_lang.SUFFIX}")):
        sources = cli_lang._read_all(cli_lang._collect([CAMPAIGNS]))
        return _declared(sources), sources
    return {}, {}


def _declared(sources: Mapping[str, str]) -> dict[str, str]:
    analysis = analyze(sources)
    if analysis.program is None:
        return {}
    return {d.name.value: d.type.value for d in analysis.program.fields()}


def _unknown(name: str, known: Iterable[str], where: str, label: str, hint: str = "") -> NoReturn:
    names = sorted(known)
    close = suggest(name, names)
    maybe = f'; did you mean "{close}"?' if close else ""
    listed = ", ".join(f'"{n}"' for n in names) or "none"
    cli_lang._fail(f'no segment "{name}" {where}{maybe}\n{label}: {listed}{hint}')


ALWAYS = frozenset({"id", *IDENTITY, "tags", *SCORES})
"""Columns every exported row has: naming them in --fields is no error."""


def _fields(requested: Sequence[str] | None, custom: Mapping[str, str]) -> list[str]:
    if requested is None:
        return list(DEFAULT_FIELDS)
    known = known_fields(list(custom))
    chosen: list[str] = []
    for item in requested:
        for name in (part.strip().removeprefix("lead.") for part in item.split(",")):
            if not name or name in chosen or name in ALWAYS:
                continue  # every row has these columns anyway
            if name not in known:
                hint = suggest(name, known)
                fix = f"did you mean `{hint}`?" if hint else "declare it in a `fields` block"
                cli_lang._fail(f"--fields: unknown field `{name}`; {fix}")
            chosen.append(name)
    return chosen


# ---------------------------------------------------------------- running


@contextmanager
def _connected(url: str | None, serial: bool = False) -> Iterator[Connection]:
    """A connection to a migrated database, or exit 1 with why not.

    `serial` turns PostgreSQL's parallel workers off for the session: in the
    export's plan each worker would aggregate every lead's tags again, and
    measured on two cores the export ran faster without them.
    """
    target = url or db.database_url()
    where = cli_db._redacted(target)
    try:
        parsed = db.normalize_url(target)
        file = parsed.database if parsed.get_backend_name() == "sqlite" else None
        if file not in (None, "", ":memory:") and not Path(str(file)).is_file():
            cli_lang._fail(f"no database at {where}; run `nurture db upgrade`", code=1)
        engine = db.make_engine(parsed, poolclass=pool.NullPool)
        if serial and parsed.get_backend_name() == "postgresql":
            event.listen(engine, "connect", _no_parallel_workers)
    except cli_db._FAILURES as e:
        cli_lang._fail(f"cannot open {where}: {cli_db._why(e)}", code=1)
    try:
        with engine.connect() as connection:
            _check_schema(connection, where)
            if connection.dialect.name == "postgresql":  # the count and the rows see one snapshot
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            yield connection
    except cli_db._FAILURES as e:
        cli_lang._fail(f"cannot read {where}: {cli_db._why(e)}", code=1)
    finally:
        engine.dispose()


def _no_parallel_workers(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET max_parallel_workers_per_gather = 0")
    dbapi_connection.commit()


def _check_schema(connection: Connection, where: str) -> None:
    """Exit 1 unless the database has the schema this nurture reads."""
    head = db.head_revision()
    revision = MigrationContext.configure(connection).get_current_revision()
    connection.rollback()
    if revision is None:
        cli_lang._fail(f"{where} has no nurture schema; run `nurture db upgrade`", code=1)
    if revision != head:
        cli_lang._fail(
            f"{where} has schema revision {revision}, this nurture reads {head}; "
            "run `nurture db upgrade`",
            code=1,
        )


def _run(work: Callable[[], T]) -> T:
    """`work()`, with a database error (such as a pattern PostgreSQL refuses) as a message."""
    try:
        return work()
    except cli_db._FAILURES as e:
        cli_lang._fail(f"the segment query failed: {cli_db._why(e)}", code=1)


@contextmanager
def _target(output: Path | None) -> Iterator[TextIO]:
    """Stdout, or a file written beside its name and moved into place when complete.

    A pipe or a device (``-o /dev/stdout``) is written in place: moving a file
    over it would replace it.
    """
    if output is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    if output.exists() and not output.is_file() and not output.is_dir():
        try:
            with output.open("w", encoding="utf-8", newline="") as out:
                yield out
        except OSError as e:
            cli_lang._fail(f"cannot write {output}: {e.strerror or e}", code=1)
        return
    partial = output.with_name(output.name + ".part")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            yield out
        os.replace(partial, output)
    except OSError as e:
        cli_lang._fail(f"cannot write {output}: {e.strerror or e}", code=1)
    finally:
        partial.unlink(missing_ok=True)


@contextmanager
def _progress(total: int, show: bool) -> Iterator[Any]:
    if not show:
        yield None
        return
    bar = Progress(
        TextColumn("exporting"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=cli_lang._console(sys.stderr),
        transient=True,
    )
    task = bar.add_task("export", total=total)
    with bar:
        yield lambda n: bar.advance(task, n)


def _note(message: str) -> None:
    cli_lang._console(sys.stderr).print(Text(message))
