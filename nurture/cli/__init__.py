"""The `nurture` command line: Typer commands that wire the libraries together.

Each command lives in a module of ``nurture.cli``, imported only when that
command runs (or ``--help`` lists it): ``nurture segment export`` then
starts without the runtime, the tracking service or Dramatiq, which other
commands need and which cost a second of start-up to import. A module
defines its commands with ``register(app)``, or is a group of its own,
``app``, named after the command. `COMMANDS` says which module holds which
command; a test checks it against what the modules register.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator, MutableMapping
from functools import cache
from typing import TYPE_CHECKING, Final

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    from typer._click import Command, Context, HelpFormatter  # Typer's own Click, types only

COMMANDS: Final = {
    "check": "lang",
    "graph": "lang",
    "deploy": "deploy",
    "diff": "diff",
    "simulate": "simulate",
    "test": "test",
    "serve": "serve",
    "run": "run",
    "worker": "run",
    "scheduler": "run",
    "db": "db",
    "leads": "intake",
    "events": "intake",
    "costs": "intake",
    "accounts": "intake",
    "report": "report",
    "deliveries": "run",
    "segment": "segment",
    "sales": "sales",
    "lsp": "lsp",
    "users": "users",
    "doctor": "doctor",
    "bounces": "bounces",
}
"""Every command, in the order ``--help`` lists them, and the ``nurture.cli`` module defining it."""

SUMMARIES: Final = {
    "check": "Check campaign files: syntax, templates, names, loops, caps. Exit 1 on any error.",
    "graph": "Draw campaigns as a flowchart: Mermaid (default), Graphviz DOT or SVG.",
    "deploy": "Deploy campaigns: each changed campaign becomes a new version; "
    "leads in flight stay,\nunless --migrate moves them.",
    "diff": "Steps added, removed and changed per campaign, and the leads in flight each touches.",
    "simulate": "Run campaigns over simulated leads on a virtual clock, with the real engine.",
    "test": "Run campaign tests: each test's scripted leads together on the virtual clock; "
    "exit 1 on\nany failure.",
    "serve": "Run the tracking service (opens, clicks, unsubscribes, event and lead API) "
    "and the\nconsole at /console/.",
    "run": "Run everything in one process: scheduler, workers, tracking service (SQLite, outbox).",
    "worker": "Run Dramatiq worker processes for the queue on NURTURE_BROKER_URL "
    "(Redis or RabbitMQ).",
    "scheduler": "Enroll new leads and hand due enrollments to the workers, in batches, "
    "every few seconds.",
    "db": "Database commands.",
    "leads": "Leads: import a CSV or JSON Lines file; show one lead's story.",
    "events": "Events in: ingest a CSV or JSON Lines file.",
    "costs": "Costs in: what each source and campaign cost per month.",
    "accounts": "Accounts in: companies from the CRM, with their owner and status.",
    "report": "Reports on the funnel, campaigns and deliveries.",
    "deliveries": "Operator commands for deliveries.",
    "segment": "Count and export the leads a segment (or a --where expression) selects.",
    "sales": "Sales answer: accept, return, report a stage, go away.",
    "lsp": "Start the language server on stdio (editors run this; see editors/vscode/).",
    "users": "Console users: add, list, remove.",
    "doctor": "Check what nurture needs outside: DNS records for DKIM.",
    "bounces": "Receive bounces and complaints for NURTURE_BOUNCE_DOMAIN over SMTP and record "
    "them.",
}
"""Each command's first paragraph of help, as ``nurture --help`` lists it without importing
the command's module (a test checks each against the command); a command missing here is
imported to list it."""


@cache
def module_commands(module: str) -> dict[str, Command]:
    """The commands ``nurture.cli.<module>`` defines, by name (the module is imported now).

    The import runs with the garbage collector paused: it allocates tens of thousands of
    objects that all live as long as the process (the language's dataclasses, Lark, Jinja2),
    and the collections it would trigger cost ``nurture check`` about a tenth of its start-up.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        found = importlib.import_module(f"nurture.cli.{module}")
    finally:
        if collecting:
            gc.enable()
    holder = typer.Typer()
    register = getattr(found, "register", None)
    if register is not None:
        register(holder)
    else:  # a group of its own (`nurture db ...`)
        name = next(n for n, m in COMMANDS.items() if m == module)
        holder.add_typer(found.app, name=name)
    return dict(typer.main.get_group(holder).commands)


class _Commands(MutableMapping[str, "Command"]):
    """The root's commands by name: all names known, each module imported on first lookup."""

    def __init__(self) -> None:
        self._added: dict[str, Command] = {}

    def __getitem__(self, name: str) -> Command:
        if name in self._added:
            return self._added[name]
        return module_commands(COMMANDS[name])[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self._added if name not in COMMANDS)

    def __len__(self) -> int:
        return len({*COMMANDS, *self._added})

    def __setitem__(self, name: str, command: Command) -> None:
        self._added[name] = command

    def __delitem__(self, name: str) -> None:
        del self._added[name]


class _LazyGroup(TyperGroup):
    """The ``nurture`` group, whose commands are `_Commands`: looked up, not built, at start.

    Its own ``--help`` lists each command from `SUMMARIES`: importing every module to read
    one line of help from each cost a second and more.
    """

    def __init__(self, **attrs: object) -> None:
        super().__init__(**attrs)  # type: ignore[arg-type]
        self._lazy = _Commands()
        self.commands = self._lazy
        self._listing = False

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self.commands)  # the names alone: no module is imported to list them

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if self._listing and cmd_name in SUMMARIES and cmd_name not in self._lazy._added:
            return _listed(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


@cache
def _listed(name: str) -> Command:
    """A stand-in for command `name` in the root's ``--help``: its name and summary alone."""
    return TyperCommand(name, help=SUMMARIES[name])


app = typer.Typer(
    name="nurture",
    cls=_LazyGroup,
    help="A code-first nurture engine: campaigns checked like code, simulated, diffed and run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from nurture import __version__

        typer.echo(f"nurture {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """nurture: campaigns as text, checked, simulated and run."""


def main() -> None:
    """Console-script entry point."""
    app()
