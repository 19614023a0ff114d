"""``nurture sales``: sales answer for their MQLs; ``nurture leads show``: one lead's story;
``nurture leads note LEAD TEXT --by MEMBER``: a note on it.

``sales accept LEAD --by MEMBER``, ``sales return LEAD --by MEMBER --reason TEXT``,
``sales stage LEAD sql|opportunity|won|lost --by MEMBER [--amount N] [--reason TEXT]``
and ``sales away MEMBER --until DATE`` / ``--back``. LEAD is an email address or a
lead id. Exit codes: 0 done (or nothing to do), 1 refused (not the owner, a stage
backwards, no reason, unknown lead or member; nothing changed) or an unusable
database, 2 bad usage.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table
from rich.text import Text
from sqlalchemy.orm import Session

from nurture.cli import db as cli_db
from nurture.cli import lang as cli_lang
from nurture.config import ConfigError, Settings

app = typer.Typer(
    help="Sales answer: accept, return, report a stage, go away.", no_args_is_help=True
)

T = TypeVar("T")
LeadArgument = Annotated[str, typer.Argument(metavar="LEAD", help="An email address or lead id.")]
By = Annotated[str, typer.Option("--by", metavar="MEMBER", help="Who answers: the lead's owner.")]
Url = Annotated[
    str | None,
    typer.Option("--url", metavar="DB", help="Database URL (default: $NURTURE_DATABASE_URL)."),
]


@app.command("accept")
def accept_command(lead: LeadArgument, by: By, url: Url = None) -> None:
    """Accept an MQL you were given: it is yours, and its SLA clock stops."""
    from nurture.handoff.answers import accept, find_lead

    _answer(url, lambda s, now: accept(s, find_lead(s, lead), by, now))


@app.command("return")
def return_command(
    lead: LeadArgument,
    by: By,
    reason: Annotated[str, typer.Option("--reason", help="Why it goes back (required).")],
    url: Url = None,
) -> None:
    """Return a lead to nurture with a reason; only new behaviour can qualify it again."""
    from nurture.handoff.answers import find_lead, give_back

    _answer(url, lambda s, now: give_back(s, find_lead(s, lead), by, reason, now))


@app.command("stage")
def stage_command(
    lead: LeadArgument,
    stage: Annotated[str, typer.Argument(metavar="STAGE", help="sql, opportunity, won or lost.")],
    by: By,
    amount: Annotated[
        str | None, typer.Option("--amount", help="The deal's amount (opportunity, won).")
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (required for lost).")] = None,
    url: Url = None,
) -> None:
    """Report how far a lead got: stages only move forward; lost returns it to nurture."""
    from nurture.handoff.answers import find_lead, report_stage

    _answer(
        url,
        lambda s, now: report_stage(
            s, find_lead(s, lead), stage.lower(), by, now, amount=amount, reason=reason
        ),
    )


@app.command("away")
def away_command(
    member: Annotated[str, typer.Argument(metavar="MEMBER", help="A team member's address.")],
    until: Annotated[
        str | None,
        typer.Option("--until", metavar="DATE", help="Back on this date (or date and time, UTC)."),
    ] = None,
    back: Annotated[bool, typer.Option("--back", help="Available again from now.")] = False,
    url: Url = None,
) -> None:
    """Mark a member away (no new leads) until a date, or back now; no deploy needed."""
    from nurture.handoff.answers import set_away
    from nurture.store.definitions import active_routing

    if back == (until is not None):
        cli_lang._fail("give either --until DATE or --back")
    moment = None if back else _moment(until or "")
    _answer(url, lambda s, now: set_away(s, active_routing(s), member, moment, now))


def note_command(
    lead: LeadArgument,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="What you learnt.")],
    by: Annotated[
        str, typer.Option("--by", metavar="MEMBER", help="Who writes it: a sales member.")
    ],
    url: Url = None,
) -> None:
    """Write a note on a lead: it shows in `nurture leads show` and the owner's notices."""
    from nurture.handoff.answers import find_lead
    from nurture.handoff.notes import add_note

    def write(session: Session, now: datetime) -> str:
        found = find_lead(session, lead)
        note = add_note(session, found, by, text, now)
        return f"note {note.id} on lead {found.id} by {note.author}"

    typer.echo(_run(url, write, commit=True))


def show_command(
    lead: LeadArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print the story as JSON.")] = False,
    url: Url = None,
) -> None:
    """One lead's whole story: profile, tags, scores, MQLs, owners and every touch and event."""
    from nurture.handoff.answers import find_lead
    from nurture.handoff.story import story

    data = _run(url, lambda s, now: story(s, find_lead(s, lead), now), commit=False)
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    _print_story(data)


def _print_story(data: dict[str, Any]) -> None:
    console = cli_lang._console(sys.stdout)
    if not sys.stdout.isatty():
        console.width = 240
    lead = data["lead"]
    name = " ".join(p for p in (lead["first_name"], lead["last_name"]) if p) or lead["email"]
    console.print(Text(f"lead {lead['id']}: {name}", style="bold"))
    profile = Table(box=None, pad_edge=False, show_header=False)
    for key, value in [*lead.items(), *data["fields"].items()]:
        if value not in (None, "") and key != "id":
            profile.add_row(key, str(value))
    scores = data["scores"]
    profile.add_row(
        "scores",
        f"fit {scores['fit']}, interest {scores['interest']}, grade {scores['grade'] or '-'}",
    )
    profile.add_row("tags", ", ".join(data["tags"]) or "-")
    for reason in scores["because"]:
        times = f" ×{reason['times']}" if reason["times"] > 1 else ""
        profile.add_row("", f"{reason['points']:+g} {reason['part']}: {reason['rule']}{times}")
    console.print(profile)
    for mql in data["mqls"]:
        answer = (
            f"returned {mql['returned_at']}: {mql['return_reason']}"
            if mql["returned_at"]
            else f"accepted {mql['accepted_at']}"
            if mql["accepted_at"]
            else f"waiting, due {mql['sla_due_at'] or '-'}"
        )
        console.print(
            Text(f"MQL {mql['at']} ({mql['rule']}) → {mql['owner'] or 'nobody'}; " + answer)
        )
    if data.get("account"):
        account = data["account"]
        console.print(
            Text(
                f"account {account['name']} ({account['status']}), owner {account['owner'] or '-'}"
            )
        )
    for note in data.get("notes", []):
        console.print(
            Text(f"note {note['at'][:16].replace('T', ' ')} {note['author']}: {note['text']}")
        )
    table = Table("at", "what", "", box=None, pad_edge=False)
    for entry in data["timeline"]:
        table.add_row(entry["at"][:19].replace("T", " "), entry["kind"], entry["what"])
    console.print(table if data["timeline"] else Text("nothing happened yet"))


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        cli_lang._fail(f"--until {text!r} is not a date (2026-12-24) or date and time")
    if len(text.strip()) <= 10:
        moment = datetime.combine(moment.date(), time())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _answer(url: str | None, act: Callable[[Session, datetime], Any]) -> None:
    done = _run(url, act, commit=True)
    typer.echo(done.said)


def _run(url: str | None, act: Callable[[Session, datetime], T], *, commit: bool) -> T:
    from nurture.handoff.answers import AnswerError

    try:
        with _session(url) as session:
            result = act(session, datetime.now(UTC))
            if commit:
                session.commit()
            return result
    except AnswerError as e:
        cli_lang._fail(str(e), code=1)


@contextmanager
def _session(url: str | None) -> Iterator[Session]:
    """A session on the migrated database; exit 1 with the reason when it is unusable."""
    from nurture.runtime.database import sessions_for

    env = {**os.environ, **({"NURTURE_DATABASE_URL": url} if url else {})}
    try:
        settings = Settings.load(env)
    except ConfigError as e:
        cli_lang._fail(cli_db.naming_option(str(e), url), code=1)
    engine = cli_db.migrated_engine(settings.database_url)
    where = cli_db._redacted(settings.database_url)
    try:
        with sessions_for(engine)() as session:
            yield session
    except cli_db._FAILURES as e:
        cli_lang._fail(f"cannot use the database {where}: {cli_db._why(e)}", code=1)
    finally:
        engine.dispose()


def export_data_command(lead: LeadArgument, url: Url = None) -> None:
    """Everything stored about a person, as JSON (a data-subject access request)."""
    from nurture.handoff.answers import find_lead
    from nurture.store.data_rights import export_person

    data = _run(url, lambda s, now: export_person(s, find_lead(s, lead)), commit=False)
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def forget_command(
    lead: LeadArgument,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    url: Url = None,
) -> None:
    """Erase a person's data (PIPL / GDPR): counts stay, the address stays hashed on the
    suppression list so a re-import gets nothing."""
    from nurture.handoff.answers import find_lead
    from nurture.store.data_rights import forget_person

    if not yes and not typer.confirm(f"Erase everything personal about {lead}?"):
        cli_lang._fail("nothing erased", code=1)

    def forget(session: Session, now: datetime) -> str:
        found = find_lead(session, lead)
        done = forget_person(session, found, now)
        counts = ", ".join(f"{n} {what}" for what, n in done.items())
        return f"lead {found.id} forgotten: {counts}"

    typer.echo(_run(url, forget, commit=True))
