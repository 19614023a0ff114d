"""The `nurture` command line: Typer commands that wire the libraries together.

Each command lives in a ``nurture.cli_*`` module, imported only when that
command runs (or ``--help`` lists it): ``nurture segment export`` then
starts without the runtime, the tracking service or Dramatiq, which other
commands need and which cost a second of start-up to import. A module
defines its commands with ``register(app)``, or is a group of its own,
``app``, named after the command. `COMMANDS` says which module holds which
command; a test checks it against what the modules register.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from functools import cache
from typing import TYPE_CHECKING, Final

import typer
from typer.core import TyperGroup

from nurture import __version__

if TYPE_CHECKING:
    from typer._click import Command, Context  # Typer's own Click, for the types alone

COMMANDS: Final = {
    "check": "cli_lang",
    "graph": "cli_lang",
    "deploy": "cli_deploy",
    "diff": "cli_diff",
    "simulate": "cli_simulate",
    "test": "cli_test",
    "serve": "cli_serve",
    "run": "cli_run",
    "worker": "cli_run",
    "scheduler": "cli_run",
    "db": "cli_db",
    "leads": "cli_intake",
    "events": "cli_intake",
    "costs": "cli_intake",
    "accounts": "cli_intake",
    "report": "cli_report",
    "deliveries": "cli_run",
    "segment": "cli_segment",
    "sales": "cli_sales",
    "lsp": "cli_lsp",
    "users": "cli_users",
    "doctor": "cli_doctor",
}
"""Every command, in the order ``--help`` lists them, and the ``nurture`` module defining it."""


@cache
def module_commands(module: str) -> dict[str, Command]:
    """The commands ``nurture.<module>`` defines, by name (the module is imported now)."""
    found = importlib.import_module(f"nurture.{module}")
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
    """The ``nurture`` group, whose commands are `_Commands`: looked up, not built, at start."""

    def __init__(self, **attrs: object) -> None:
        super().__init__(**attrs)  # type: ignore[arg-type]
        self.commands = _Commands()

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self.commands)  # the names alone: no module is imported to list them


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
