"""The `nurture` command line: Typer commands that wire the libraries together."""

from __future__ import annotations

import typer

from nurture import (
    __version__,
    cli_db,
    cli_deploy,
    cli_intake,
    cli_lang,
    cli_run,
    cli_serve,
    cli_simulate,
)
from nurture.cli_segment import register as register_segment

app = typer.Typer(
    name="nurture",
    help="A code-first nurture engine: campaigns checked like code, simulated, diffed and run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(cli_db.app, name="db")
cli_lang.register(app)
cli_deploy.register(app)
cli_intake.register(app)
cli_simulate.register(app)
cli_serve.register(app)
cli_run.register(app)
register_segment(app)


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
