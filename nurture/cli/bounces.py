"""``nurture bounces``: the SMTP listener for the bounce domain (DSNs, ARF complaints).

Point the MX of ``NURTURE_BOUNCE_DOMAIN`` at this listener (port 25, or a
relay that forwards the domain to it). Every email then goes out with a signed
per-delivery return path (`nurture.deliverability.verp`); what comes back is
read and recorded by `nurture.deliverability.inbound`, one log line per
message on stderr. Exit codes: 1 when the configuration or the database is
unusable, or the address cannot be listened on, with the reason on stderr.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Annotated

import typer
from aiosmtpd.smtp import SMTP

from nurture import db
from nurture.cli import db as cli_db
from nurture.cli import lang as cli_lang
from nurture.config import ConfigError, Settings
from nurture.deliverability.feedback import BouncePolicy
from nurture.deliverability.inbound import BounceHandler
from nurture.deliverability.verp import verp_of

MAX_MESSAGE = 10 * 1024 * 1024
"""A report bigger than this (it quotes the whole original) is refused with 552."""


def register(app: typer.Typer) -> None:
    """Add ``bounces`` to the main ``nurture`` app."""
    app.command("bounces")(bounces_command)


def bounces_command(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on (25 for an MX).")
    ] = 2525,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="DB",
            help="Database URL (default: $NURTURE_DATABASE_URL or sqlite:///nurture.db).",
        ),
    ] = None,
) -> None:
    """Receive bounces and complaints for NURTURE_BOUNCE_DOMAIN over SMTP and record them."""
    env = dict(os.environ)
    if url:
        env["NURTURE_DATABASE_URL"] = url
    try:
        settings = Settings.load(env)
        verp = verp_of(settings)
    except ConfigError as e:
        cli_lang._fail(cli_db.naming_option(str(e), url), code=1)
    if verp is None:
        cli_lang._fail(
            "NURTURE_BOUNCE_DOMAIN is not set: name the domain whose MX points here "
            "(it is also the domain of every email's return path)",
            code=1,
        )
    engine = cli_db.migrated_engine(
        settings.database_url, make=lambda u: db.make_engine(u, pool_pre_ping=True)
    )
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    # aiosmtpd logs every SMTP command at INFO: a dozen lines a message, none saying what it was
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    on_wake = None
    if settings.broker_url:
        from nurture import runtime

        on_wake = runtime.on_wake
    handler = BounceHandler(
        db.session_factory(engine), verp, BouncePolicy.of(settings), on_wake=on_wake
    )
    try:
        asyncio.run(_serve(handler, host, port))
    except OSError as e:
        cli_lang._fail(f"--host/--port: cannot listen on {host}:{port}: {e.strerror or e}", code=1)
    finally:
        engine.dispose()


async def _serve(handler: BounceHandler, host: str, port: int) -> None:
    """Listen until SIGTERM or SIGINT, then finish the sessions in flight and stop."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            hostname=handler.verp.domain,
            data_size_limit=MAX_MESSAGE,
            enable_SMTPUTF8=True,
            ident="nurture bounces",
        ),
        host,
        port,
    )
    bound = server.sockets[0].getsockname()[1]
    print(
        f"nurture bounces: listening on {host}:{bound} for mail to @{handler.verp.domain}",
        file=sys.stderr,
        flush=True,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()
