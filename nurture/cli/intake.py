"""``nurture leads import`` and ``nurture events ingest``: leads and events from files.

Exit codes: 0 stored (or, with ``--dry-run``, would store), 1 problems in the
rows (each printed as ``FILE:LINE: field: message``; nothing is stored) or an
unusable database, 2 bad usage (a missing file, a file that is not CSV or
JSON Lines). Formats: `nurture.intake`.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.orm import Session

from nurture.cli import db as cli_db
from nurture.cli import lang as cli_lang
from nurture.config import ConfigError, Settings

MAX_SHOWN = 50
"""Problems printed before the rest are only counted."""

leads_app = typer.Typer(
    help="Leads: import a CSV or JSON Lines file; show one lead's story.", no_args_is_help=True
)
events_app = typer.Typer(help="Events in: ingest a CSV or JSON Lines file.", no_args_is_help=True)
accounts_app = typer.Typer(
    help="Accounts in: companies from the CRM, with their owner and status.", no_args_is_help=True
)
costs_app = typer.Typer(
    help="Costs in: what each source and campaign cost per month.", no_args_is_help=True
)

FileArgument = Annotated[
    Path, typer.Argument(metavar="FILE", help="A .csv file with a header row, or .jsonl.")
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Check every row and say what would happen; store none.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")]
Url = Annotated[
    str | None,
    typer.Option("--url", metavar="DB", help="Database URL (default: $NURTURE_DATABASE_URL)."),
]


def register(app: typer.Typer) -> None:
    """Add ``leads`` and ``events`` to the main ``nurture`` app."""
    from nurture.cli.sales import export_data_command, forget_command, note_command, show_command

    leads_app.command("show")(show_command)
    leads_app.command("note")(note_command)
    leads_app.command("export-data")(export_data_command)
    leads_app.command("forget")(forget_command)
    app.add_typer(leads_app, name="leads")
    app.add_typer(events_app, name="events")
    app.add_typer(costs_app, name="costs")
    app.add_typer(accounts_app, name="accounts")


@leads_app.command("import")
def import_command(
    file: FileArgument, dry_run: DryRun = False, as_json: AsJson = False, url: Url = None
) -> None:
    """Import leads: cleaned, deduplicated by email, phone or messaging id, merged; all or none.

    Columns: email, phone, messaging_id, first_name, last_name, company,
    title, source, time_zone, tags (separated by ;); any other column is an
    attribute. New leads enroll on the scheduler's next poll.
    """
    from nurture.intake_batches import check_leads, import_leads
    from nurture.tracking.config import lead_rules

    settings = _settings(url)
    _file(file)
    with _progress("checking", None) as tick:
        spool = _checked(lambda: check_leads(file, lead_rules(settings), tick), file)
    try:
        with (
            _transaction(settings, commit=not dry_run) as session,
            _progress("importing", spool.rows) as tick,
        ):
            outcome = import_leads(session, spool, datetime.now(UTC), tick, keep_ids=as_json)
    finally:
        spool.close()
    if as_json:
        data = {**outcome.to_json(), "dry_run": dry_run}
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    table = _table(
        ("created", outcome.created),
        ("updated", outcome.updated),
        ("merged away", len(outcome.merged)),
        ("skipped", len(outcome.skipped)),
    )
    reasons = Counter(str(s["reason"]) for s in outcome.skipped)
    rows = f"{spool.rows:,} rows {_done(dry_run, 'imported')}"
    _print(table, _reasons(reasons), f"{file}: {rows}")
    if outcome.created and not dry_run:
        _print("new leads enroll on the scheduler's next poll (nurture run or nurture scheduler)")


@events_app.command("ingest")
def ingest_command(
    file: FileArgument, dry_run: DryRun = False, as_json: AsJson = False, url: Url = None
) -> None:
    """Ingest events: each names its lead (lead_id, email, phone or messaging_id); all or none.

    Columns: type (opened, clicked, form_submitted, page_viewed, custom, ...),
    name (for custom events), at (ISO-8601 with a zone; default now), link,
    delivery_id; any other column goes to the event's data. Scores, MQLs and
    waiting enrollments follow as for the tracking API.
    """
    from nurture.intake import RowProblems
    from nurture.intake_batches import check_events, ingest_events
    from nurture.tracking.config import lead_rules

    settings = _settings(url)
    _file(file)
    now = datetime.now(UTC)
    with _progress("checking", None) as tick:
        spool = _checked(lambda: check_events(file, now, lead_rules(settings), tick), file)
    try:
        with (
            _transaction(settings, commit=not dry_run) as session,
            _progress("ingesting", spool.rows) as tick,
        ):
            done = ingest_events(session, spool, now, tick)
    except RowProblems as e:
        _problems(e.problems, file, e.total)
    finally:
        spool.close()
    if as_json:
        data = {"recorded": done.recorded, "woken": done.woken, "dry_run": dry_run}
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    table = _table(("events", done.recorded), ("enrollments woken", len(done.woken)))
    _print(table, f"{file}: {spool.rows:,} rows {_done(dry_run, 'ingested')}")


@costs_app.command("import")
def costs_command(
    file: FileArgument, dry_run: DryRun = False, as_json: AsJson = False, url: Url = None
) -> None:
    """Import costs: source or campaign, month (2026-03), amount; all or none.

    A (source or campaign, month) already stored is replaced. `nurture report
    funnel` shows cost per lead and per MQL, and ROMI (won amount / cost).
    """
    from nurture.costs import check_costs, store_costs

    settings = _settings(url)
    rows = _rows(file, "costs")
    costs = _checked(lambda: check_costs(rows), file)
    with _transaction(settings, commit=not dry_run) as session:
        stored = store_costs(session, costs, datetime.now(UTC))
    if as_json:
        typer.echo(json.dumps({"stored": stored, "dry_run": dry_run}, indent=2))
        return
    total = sum(c.amount for c in costs)
    _print(
        _table(("costs", stored)),
        f"{file}: {stored:,} rows, {total:,} in all, " + _done(dry_run, "imported"),
    )


@accounts_app.command("import")
def accounts_command(
    file: FileArgument, dry_run: DryRun = False, as_json: AsJson = False, url: Url = None
) -> None:
    """Import accounts: name, domains (separated by ;), owner, status; all or none.

    Status is customer, opportunity or prospect (the default). An account is found again
    by its normalised name and updated. Leads are matched to accounts by email domain,
    else by company name; a customer's or open deal's lead goes to the account's owner.
    Importing an account again brings its leads up to date (name, status, owner,
    is_customer); a lead keeps an owner it already has.
    """
    from nurture.handoff.accounts import check_account, store_accounts
    from nurture.intake import RowProblems
    from nurture.store.definitions import active_routing

    settings = _settings(url)
    rows = _rows(file, "accounts")
    checked = [(row, *check_account(row.item)) for row in rows]
    problems = [f"{r.path}:{r.line}: {f}: {m}" for r, _, found in checked for f, m in found]
    seen: dict[str, int] = {}
    for row, account, _ in checked:
        if account is not None and seen.setdefault(account.key, row.line) != row.line:
            first = seen[account.key]
            problems.append(f"{row.path}:{row.line}: name: the same company as line {first}")
    if problems:
        _problems(RowProblems(problems).problems, file)
    accounts = [account for _, account, _ in checked if account is not None]
    with _transaction(settings, commit=not dry_run) as session:
        routing = active_routing(session)
        done = store_accounts(session, accounts, routing, datetime.now(UTC))
    if as_json:
        data = {
            "created": done.created,
            "updated": done.updated,
            "leads_matched": done.matched,
            "leads_updated": done.refreshed,
        }
        typer.echo(json.dumps({**data, "dry_run": dry_run}, indent=2))
        return
    table = _table(
        ("created", done.created),
        ("updated", done.updated),
        ("leads matched", done.matched),
        ("leads updated", done.refreshed),
    )
    _print(table, f"{file}: {cli_lang._plural(len(rows), 'row')} {_done(dry_run, 'imported')}")


# ---------------------------------------------------------------- helpers


def _settings(url: str | None) -> Settings:
    env = {**os.environ, **({"NURTURE_DATABASE_URL": url} if url else {})}
    try:
        return Settings.load(env)
    except ConfigError as e:
        cli_lang._fail(cli_db.naming_option(str(e), url), code=1)


def _file(file: Path) -> None:
    if not file.is_file():
        cli_lang._fail(f"{file}: {'not a file' if file.exists() else 'no such file'}")


def _rows(file: Path, kind: Any) -> Sequence[Any]:
    from nurture.intake import FileError, read_rows

    _file(file)
    try:
        return read_rows(file, kind)
    except FileError as e:
        cli_lang._fail(str(e))


def _checked(check: Callable[[], Any], file: Path) -> Any:
    """What `check` returns; its `RowProblems` printed, its `FileError` (a file that cannot
    be read as rows) said in one line."""
    from nurture.intake import FileError, RowProblems

    try:
        return check()
    except RowProblems as e:
        _problems(e.problems, file, e.total)
    except FileError as e:
        cli_lang._fail(str(e))


def _problems(problems: Sequence[str], file: Path, total: int | None = None) -> NoReturn:
    total = len(problems) if total is None else total
    console = cli_lang._console(sys.stderr)
    for line in problems[:MAX_SHOWN]:
        console.print(line, markup=False)
    if total > MAX_SHOWN:
        console.print(f"... and {total - MAX_SHOWN:,} more", markup=False)
    count = cli_lang._plural(total, "problem")
    cli_lang._fail(f"{count} in {file}: nothing stored", code=1)


@contextmanager
def _transaction(settings: Settings, *, commit: bool) -> Iterator[Session]:
    """One transaction on the migrated database: committed at the end when `commit`, else
    (a dry run, or an error) rolled back."""
    from nurture.runtime.database import sessions_for

    engine = cli_db.migrated_engine(settings.database_url)
    where = cli_db._redacted(settings.database_url)
    try:
        with sessions_for(engine)() as session:
            try:
                yield session
                session.commit() if commit else session.rollback()
            except BaseException:
                session.rollback()
                raise
    except cli_db._FAILURES as e:
        cli_lang._fail(f"cannot write to {where}: {cli_db._why(e)}; nothing stored", code=1)
    finally:
        engine.dispose()


@contextmanager
def _progress(verb: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A bar over the rows on stderr (only on a terminal); `total` None: rows counted as they
    are read. The callback advances it by a number of rows."""
    console = Console(stderr=True)
    bar = Progress(
        TextColumn(verb),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = bar.add_task(verb, total=total)
    with bar:
        yield lambda count: bar.advance(task, count)


def _done(dry_run: bool, verb: str) -> str:
    return "checked, nothing stored (--dry-run)" if dry_run else verb


def _table(*counts: tuple[str, int]) -> Table:
    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column()
    table.add_column(justify="right")
    for name, count in counts:
        table.add_row(name, f"{count:,}")
    return table


def _reasons(reasons: Counter[str]) -> Table | str:
    if not reasons:
        return ""
    table = Table("skipped because", "rows", box=None, pad_edge=False)
    for reason, count in reasons.most_common():
        table.add_row(reason, f"{count:,}")
    return table


def _print(*things: Table | str) -> None:
    console = cli_lang._console(sys.stdout)
    for thing in things:
        if isinstance(thing, Table):
            console.print(thing)
        elif thing:
            console.print(thing, markup=False)
