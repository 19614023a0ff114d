"""``nurture users``: who may sign in to the console, with which role.

``users add EMAIL [--role admin|marketer|sales|analyst] [--password-stdin]``
(the password is prompted twice, or read as one line from stdin; a routing
team member's address without ``--role`` becomes a sales user),
``users invite [EMAIL...] [--routing] [--role ROLE]`` (each gets an email
with a link to choose their own password; `nurture.console.invites`),
``users list [--json]`` and ``users remove EMAIL``. Exit codes: 0 done, 1
refused (a bad address or role, a short password, a user already there or
not there; nothing changed), an invitation email not sent (the invitation
stays pending: invite again), or an unusable database, 2 bad usage.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from nurture.cli import db as cli_db
from nurture.cli import lang as cli_lang
from nurture.cli.sales import Url, _session

if TYPE_CHECKING:
    from nurture.config import Settings

app = typer.Typer(help="Console users: add, list, remove.", no_args_is_help=True)
Email = Annotated[str, typer.Argument(metavar="EMAIL", help="The user's email address.")]


@app.command("add")
def add_command(
    email: Email,
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            help="admin, marketer, sales or analyst (default: sales for a routing member).",
        ),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password as one line from stdin.")
    ] = False,
    url: Url = None,
) -> None:
    """Add a console user; the password is asked for (twice) unless --password-stdin."""
    from nurture.console.users import UserError, add_user, check_password
    from nurture.handoff.route import members
    from nurture.store.definitions import active_routing

    password = _password(password_stdin)
    try:
        check_password(password)
    except UserError as e:
        cli_lang._fail(str(e), code=1)
    with _session(url) as session:
        routing = active_routing(session)
        try:
            user = add_user(session, email, role.lower() if role else None, password, routing)
        except UserError as e:
            cli_lang._fail(str(e), code=1)
        session.commit()
        member = user.email in members(routing)
    said = f"added {user.email} ({user.role})"
    if user.role == "sales":
        said += (
            "; a team member of the deployed routing: sees the leads routed to them"
            if member
            else "; not a team member of the deployed routing: sees only leads they own"
        )
    typer.echo(said)


@app.command("invite")
def invite_command(
    emails: Annotated[
        list[str] | None, typer.Argument(metavar="[EMAIL]...", help="Addresses to invite.")
    ] = None,
    routing: Annotated[
        bool,
        typer.Option("--routing", help="Also every team member of the deployed routing."),
    ] = False,
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            help="admin, marketer, sales or analyst (default: sales for a routing member).",
        ),
    ] = None,
    url: Url = None,
) -> None:
    """Invite people by email: each gets a link to choose their own password."""
    from nurture.console import invites
    from nurture.console.users import UserError
    from nurture.runtime.sending import send_email_now
    from nurture.store.definitions import active_routing
    from nurture.tokens import TokenSigner

    if not emails and not routing:
        cli_lang._fail("name the addresses to invite, or give --routing", code=2)
    settings = _settings(url)
    mailer = invites.Mailer(
        settings.base_url,
        settings.sender_domain(),
        lambda messages: send_email_now(settings, messages),
        timedelta(seconds=settings.console_invite_seconds),
    )
    now = datetime.now(UTC)
    with _session(url) as session:
        deployed = active_routing(session)
        named = [e.strip().lower() for e in emails or ()]
        try:
            team = invites.routing_invitees(session, deployed) if routing else []
            chosen = role and role.lower()
            done = invites.invite(session, named, chosen, deployed, now)
            # a member invited before is not sent a new link unless named
            others = [m for m in team if m not in named]
            done += invites.invite(session, others, chosen, deployed, now, again=False)
        except UserError as e:
            cli_lang._fail(str(e), code=1)
        session.commit()  # before the emails go out: no link names a nonce nobody stored
    invites.send(mailer, TokenSigner(list(settings.secret_keys())), done, now)
    table = Table("email", "role", "invitation", "email", box=None)
    for one in done:
        table.add_row(one.email, one.role, one.outcome, one.sent or "not sent")
    cli_lang._console(sys.stdout).print(table)
    failed = [one for one in done if one.nonce is not None and one.sent != "sent"]
    if failed:
        cli_lang._fail(
            f"{len(failed)} invitation email(s) not sent; run the command again for them",
            code=1,
        )


@app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the users as JSON.")] = False,
    url: Url = None,
) -> None:
    """List the console's users, their roles and lock-outs."""
    from nurture.console.invites import state
    from nurture.console.users import all_users
    from nurture.handoff.route import members
    from nurture.store.definitions import active_routing

    age = timedelta(seconds=_settings(url).console_invite_seconds)
    now = datetime.now(UTC)
    with _session(url) as session:
        known = members(active_routing(session))
        rows: list[dict[str, Any]] = [
            {
                "email": u.email,
                "role": u.role,
                "member": u.email in known,
                "invitation": state(u, now, age) or None,
                "locked_until": u.locked_until.isoformat() if u.locked_until else None,
                "signed_in_at": u.signed_in_at.isoformat() if u.signed_in_at else None,
            }
            for u in all_users(session)
        ]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("no users yet: nurture users add EMAIL --role admin")
        return
    table = Table(
        "email", "role", "team member", "invitation", "locked until", "last sign-in", box=None
    )
    for row in rows:
        table.add_row(
            str(row["email"]),
            str(row["role"]),
            "yes" if row["member"] else "",
            row["invitation"] or "",
            row["locked_until"] or "",
            row["signed_in_at"] or "",
        )
    cli_lang._console(sys.stdout).print(table)


@app.command("remove")
def remove_command(email: Email, url: Url = None) -> None:
    """Remove a console user; they are signed out at their next request."""
    from nurture.console.users import UserError, remove_user

    with _session(url) as session:
        try:
            user = remove_user(session, email)
        except UserError as e:
            cli_lang._fail(str(e), code=1)
        session.commit()
    typer.echo(f"removed {user.email}")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        cli_lang._fail("no terminal to ask for the password on: use --password-stdin")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _settings(url: str | None) -> Settings:
    """The settings (the database from `url` when given); exit 1 naming a bad one."""
    from nurture.config import ConfigError, Settings

    env = {**os.environ, **({"NURTURE_DATABASE_URL": url} if url else {})}
    try:
        return Settings.load(env)
    except ConfigError as e:
        cli_lang._fail(cli_db.naming_option(str(e), url), code=1)
