"""``nurture users``: who may sign in to the console, with which role.

``users add EMAIL [--role admin|marketer|sales|analyst] [--password-stdin]``
(the password is prompted twice, or read as one line from stdin; a routing
team member's address without ``--role`` becomes a sales user),
``users list [--json]`` and ``users remove EMAIL``. Exit codes: 0 done, 1
refused (a bad address or role, a short password, a user already there or
not there; nothing changed) or an unusable database, 2 bad usage.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from nurture.cli import lang as cli_lang
from nurture.cli.sales import Url, _session

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


@app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the users as JSON.")] = False,
    url: Url = None,
) -> None:
    """List the console's users, their roles and lock-outs."""
    from nurture.console.users import all_users
    from nurture.handoff.route import members
    from nurture.store.definitions import active_routing

    with _session(url) as session:
        known = members(active_routing(session))
        rows: list[dict[str, Any]] = [
            {
                "email": u.email,
                "role": u.role,
                "member": u.email in known,
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
    table = Table("email", "role", "team member", "locked until", "last sign-in", box=None)
    for row in rows:
        table.add_row(
            str(row["email"]),
            str(row["role"]),
            "yes" if row["member"] else "",
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
