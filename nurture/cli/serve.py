"""``nurture serve``: the tracking service under uvicorn.

Settings come from the environment (`nurture.tracking.config`); ``--url``
overrides ``NURTURE_DATABASE_URL``. Exit codes: 1 when the configuration or
the database is unusable (a missing ``NURTURE_SECRET_KEY`` in production, a
schema that is not at the newest migration), with the reason on stderr.

Waking: an event makes the lead's event-waiting enrollments due at once in
the database, and the runtime's hooks (`nurture.runtime.on_wake`, `on_lead`)
enqueue them on the broker at once when ``NURTURE_BROKER_URL`` is set (else
the scheduler's next poll runs them) and enroll new leads by their triggers.
Likewise the notices an MQL queues for its owner go to the workers as their
transaction commits (`nurture.runtime.on_notices`).
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from enum import StrEnum
from typing import Annotated

import typer
import uvicorn
from sqlalchemy import Engine

from dsl.templates import FileTemplates
from nurture import db, runtime
from nurture.cli import db as cli_db
from nurture.cli import lang as cli_lang
from nurture.config import Settings
from nurture.console import Lockout, create_console
from nurture.console.invites import Mailer
from nurture.handoff import notices
from nurture.render import Renderer
from nurture.runtime.sending import send_email_now
from nurture.tracking import ConfigError, TrackingConfig, create_app, load_config


class LogLevel(StrEnum):
    """uvicorn's log levels."""

    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"
    trace = "trace"


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the main ``nurture`` app."""
    app.command("serve")(serve_command)


def serve_command(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")
    ] = 8080,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="DB",
            help="Database URL (default: $NURTURE_DATABASE_URL or sqlite:///nurture.db).",
        ),
    ] = None,
    log_level: Annotated[
        LogLevel, typer.Option("--log-level", help="uvicorn's log level.")
    ] = LogLevel.info,
) -> None:
    """Run the tracking service (opens, clicks, unsubscribes, event and lead API) and the
    console at /console/."""
    env = dict(os.environ)
    if url:
        env["NURTURE_DATABASE_URL"] = url
    try:
        config = load_config(env)
    except ConfigError as e:
        cli_lang._fail(cli_db.naming_option(str(e), url), code=1)
    _check_listen(host, port)
    _check_broker(env)
    engine = _engine(config)
    sessions = db.session_factory(engine)
    notices.after_commit(sessions, runtime.on_notices)  # an MQL's owner hears at once
    try:
        console = create_console(
            sessions,
            config.secret_keys,
            lockout=_lockout(env),
            renderer=_renderer(config, env),
            mailer=_mailer(env),
        )
        app = create_app(
            sessions,
            config.signer(),
            api_key=config.api_key,
            lead_rules=config.lead_rules,
            esp=config.esp,
            on_wake=runtime.on_wake,
            on_lead=runtime.on_lead,
            console=console,
        )
        uvicorn.run(app, host=host, port=port, log_level=log_level.value, server_header=False)
    finally:
        engine.dispose()


def _lockout(env: dict[str, str]) -> Lockout:
    """The console's lock-out settings, or exit 1 naming the bad one."""
    try:
        return Lockout(
            Settings.load_one("console_lockout_attempts", env),
            Settings.load_one("console_lockout_seconds", env),
        )
    except ConfigError as e:
        cli_lang._fail(str(e), code=1)


def _mailer(env: dict[str, str]) -> Mailer:
    """The console's invitations, sent through the configured email channel."""
    settings = Settings.load(env)  # already checked whole by `load_config`
    return Mailer(
        settings.base_url,
        settings.sender_domain(),
        lambda messages: send_email_now(settings, messages),
        timedelta(seconds=settings.console_invite_seconds),
    )


def _renderer(config: TrackingConfig, env: dict[str, str]) -> Renderer:
    """The workers' templates, for the console to show a touch's message again."""
    try:
        roots = Settings.load_one("templates", env)
    except ConfigError as e:
        cli_lang._fail(str(e), code=1)
    return Renderer(FileTemplates(roots), config.signer(), config.base_url)


def _check_listen(host: str, port: int) -> None:
    """Exit 1 with the reason when nothing can listen on `host`:`port` (uvicorn only logs it).

    A trial bind, released at once: a port taken between here and uvicorn's
    own bind is still uvicorn's to report.
    """
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _name, address = found[0]
        with socket.socket(family, kind, proto) as trial:
            trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            trial.bind(address)
    except OSError as e:
        why = e.strerror or str(e)
        cli_lang._fail(f"--host/--port: cannot listen on {host}:{port}: {why}", code=1)


def _check_broker(env: dict[str, str]) -> None:
    """Exit 1 with one line when NURTURE_BROKER_URL is set and its broker does not answer
    (the service would otherwise start and drop every wake-up it tries to enqueue)."""
    try:
        url = Settings.load(env).broker_url
    except ConfigError as e:
        cli_lang._fail(str(e), code=1)
    if url:
        from nurture.cli.run import check_broker

        check_broker(url)


def _engine(config: TrackingConfig) -> Engine:
    """An engine on a database whose schema is at the newest migration, or exit 1."""
    return cli_db.migrated_engine(
        config.database_url, make=lambda url: db.make_engine(url, pool_pre_ping=True)
    )
