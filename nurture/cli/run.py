"""``nurture run``, ``worker``, ``scheduler``, ``report deliveries`` and ``deliveries release``.

    nurture run [PATH...] [--speed X] [--for 7d] [--demo-leads N]   everything in one process
    nurture worker [--processes N] [--threads M]                    Dramatiq workers
    nurture scheduler [--once] [--interval S]                       due work to the workers
    nurture report deliveries [--unknown] [--json]                  what was sent, what is unknown
    nurture deliveries release ID... [--reason TEXT] [--delivered]  an operator's decision

Settings come from the environment and ``nurture.toml`` (`nurture.config`).
Exit codes: 0 done, 1 a setting, the database or the broker is unusable (the
reason on stderr, one line), 2 bad usage.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn

import typer
from rich.table import Table
from rich.text import Text
from sqlalchemy.orm import Session

from nurture.cli import db as cli_db
from nurture.cli import lang as cli_lang
from nurture.config import ConfigError, Settings

DEFAULT_CAMPAIGNS = Path("campaigns")


IDLE_POLL_MS: Final = 100
"""An idle worker asks the broker for work at least this often. Dramatiq's default, a
second, would hold a new MQL's notice to its owner for up to that long."""


def register(app: typer.Typer) -> None:
    """Add ``run``, ``worker``, ``scheduler`` and ``deliveries release``.

    ``report deliveries`` is here too, and `nurture.cli.report` lists it in ``report``."""
    app.command("run")(run_command)
    app.command("worker")(worker_command)
    app.command("scheduler")(scheduler_command)
    deliveries = typer.Typer(help="Operator commands for deliveries.", no_args_is_help=True)
    deliveries.command("release")(release_command)
    app.add_typer(deliveries, name="deliveries")


def _settings(**changes: Any) -> Settings:
    try:
        settings = Settings.load()
        return settings.with_changes(**changes) if changes else settings
    except ConfigError as e:
        _fail(str(e))


def _fail(message: str) -> NoReturn:
    cli_lang._fail(message, code=1)


# ---------------------------------------------------------------- nurture run


def run_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="[PATH...]",
            help="Campaign files or folders to deploy first (default: ./campaigns if present).",
            show_default=False,
        ),
    ] = None,
    speed: Annotated[
        float,
        typer.Option(
            "--speed",
            min=0.001,
            max=10_000_000,
            help="Seconds of campaign time per real second (86400: a day each second).",
        ),
    ] = 1.0,
    duration: Annotated[
        str | None,
        typer.Option(
            "--for",
            "--until",
            metavar="DURATION",
            help="Stop after this much campaign time: 90s, 15m, 2h, 3d, 2w.",
        ),
    ] = None,
    demo_leads: Annotated[
        int,
        typer.Option("--demo-leads", min=0, metavar="N", help="Add N synthetic leads first."),
    ] = 0,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", help="Seed of the demo leads and what they read (default: the time)."
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="Worker threads (default 4).")
    ] = None,
    tracking: Annotated[
        bool,
        typer.Option(
            "--tracking/--no-tracking",
            help="Serve opens, clicks and unsubscribes on NURTURE_BASE_URL.",
        ),
    ] = True,
) -> None:
    """Run everything in one process: scheduler, workers, tracking service (SQLite, outbox)."""
    from nurture.runtime.deploying import DeployProblem
    from nurture.runtime.embedded import RunOptions, parse_duration, run_embedded

    settings = _settings(**({"worker_threads": threads} if threads else {}))
    try:
        length = parse_duration(duration) if duration else None
    except ValueError as e:
        cli_lang._fail(f"--for: {e}")
    chosen = tuple(paths or ([DEFAULT_CAMPAIGNS] if DEFAULT_CAMPAIGNS.is_dir() else []))
    options = RunOptions(chosen, speed, length, demo_leads, seed, tracking)
    console = cli_lang._console(sys.stdout)
    stop = threading.Event()
    _stop_on_signals(stop)
    _describe(console, settings, options)
    try:
        summary = run_embedded(settings, options, lambda line: console.print(Text(line)), stop)
    except DeployProblem as e:
        _fail(f"cannot deploy the campaigns:\n{e}")
    except ConfigError as e:
        _fail(str(e))
    except cli_db._FAILURES as e:
        _fail(
            f"cannot use the database {cli_db._redacted(settings.database_url)}: {cli_db._why(e)}"
        )
    _print_summary(console, settings, summary)


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: object) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


def _describe(console: Any, settings: Settings, options: Any) -> None:
    from nurture.runtime.sending import destinations

    where = ", ".join(f"{name} to {place}" for name, place in destinations(settings).items())
    pace = f", {options.speed:g}× speed" if options.speed != 1 else ""
    until = f" for {_words(options.duration)} of campaign time" if options.duration else ""
    base = settings.base_url.rstrip("/")
    console_url = f"; console at {base}/console/" if options.tracking else ""
    console.print(
        Text(
            f"nurture run: {cli_db._redacted(settings.database_url)}, {where}{pace}"
            f"{until}{console_url}; Ctrl-C stops"
        )
    )


def _words(delta: Any) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" + ("s" if count != 1 else "")
    return f"{seconds} seconds"


def _print_summary(console: Any, settings: Settings, summary: Any) -> None:
    table = Table("template", "channel", "status", "touches", box=None, pad_edge=False)
    for (template, channel, status), count in sorted(summary.deliveries.items()):
        table.add_row(template, channel, status, str(count))
    console.print(table)
    states = ", ".join(f"{n} {s}" for s, n in sorted(summary.enrollments.items())) or "none"
    console.print(
        Text(
            f"{summary.leads} leads; enrollments: {states}; campaign time "
            f"{summary.started:%Y-%m-%d %H:%M} → {summary.ended:%Y-%m-%d %H:%M} UTC"
        )
    )
    if summary.mqls:
        told = ", ".join(f"{n} {s}" for s, n in sorted(summary.notices.items())) or "none"
        console.print(
            Text(
                f"{summary.mqls} MQLs handed to sales; {summary.reassigned} reassigned after "
                f"their SLA ran out; notices to owners: {told}"
            )
        )
    reading = summary.reading
    if reading is not None:
        failed = f" ({reading.failed} requests failed)" if reading.failed else ""
        console.print(
            Text(
                f"demo readers opened {reading.opened} of {reading.read} emails and clicked "
                f"{reading.clicked} links, through the tracking service at "
                f"{summary.tracking_url}{failed}"
            )
        )
    if settings.smtp_url is None:
        console.print(
            Text(f"emails are in {settings.outbox}/ (open the .eml files in a mail program)")
        )


# ---------------------------------------------------------------- worker and scheduler


def worker_command(
    processes: Annotated[
        int | None, typer.Option("--processes", "-p", min=1, help="Worker processes.")
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", "-t", min=1, help="Threads per process.")
    ] = None,
) -> None:
    """Run Dramatiq worker processes for the queue on NURTURE_BROKER_URL (Redis or RabbitMQ)."""
    changes = {"worker_processes": processes, "worker_threads": threads}
    settings = _settings(**{k: v for k, v in changes.items() if v is not None})
    _need_broker(settings, "nurture worker")
    try:
        settings.secret_keys()
    except ConfigError as e:
        _fail(str(e))
    _check_database(settings)
    check_broker(settings.broker_url or "")
    # Dramatiq reads its idle poll when its worker module is first imported (here, and in
    # each worker process it starts, which inherit the environment).
    os.environ.setdefault("dramatiq_worker_timeout", str(IDLE_POLL_MS))
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    args = make_argument_parser().parse_args(  # type: ignore[no-untyped-call]
        [
            "nurture.runtime.actors",
            "--processes",
            str(settings.worker_processes),
            "--threads",
            str(settings.worker_threads),
            "--queues",
            "nurture",
            "--worker-shutdown-timeout",
            str(round(settings.shutdown_seconds * 1000)),
        ]
    )
    raise typer.Exit(dramatiq_main(args) or 0)  # type: ignore[no-untyped-call]


def scheduler_command(
    once: Annotated[bool, typer.Option("--once", help="Poll once and exit.")] = False,
    interval: Annotated[
        float | None,
        typer.Option("--interval", min=0.01, metavar="S", help="Seconds between polls (1)."),
    ] = None,
) -> None:
    """Enroll new leads and hand due enrollments to the workers, in batches, every few seconds."""
    settings = _settings(**({"scheduler_interval": interval} if interval else {}))
    _need_broker(settings, "nurture scheduler")
    try:
        settings.secret_keys()  # notices to sales carry signed accept / return links
    except ConfigError as e:
        _fail(str(e))
    _check_database(settings)
    check_broker(settings.broker_url or "")
    from nurture.runtime.broker import Queue, make_broker
    from nurture.runtime.notifying import notice_sender
    from nurture.runtime.process import Runtime
    from nurture.runtime.scheduler import Scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    runtime = Runtime.start(settings, name="scheduler")  # notices to owners need the channels
    queue = Queue(make_broker(settings))
    scheduler = Scheduler(
        runtime.sessions,
        runtime.clock,
        settings,
        queue,
        backlog=queue.backlog,
        graphs=runtime.graphs,
        notices=notice_sender(runtime).send_pending,
    )
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        if once:
            report = scheduler.tick()
            typer.echo(
                f"enrolled {len(report.enrolled)}, enqueued {report.enqueued} enrollments "
                f"in {report.batches} batches" + (f"; {report.failed}" if report.failed else "")
            )
        else:
            scheduler.run(stop)
    finally:
        queue.broker.close()
        runtime.close()


def _need_broker(settings: Settings, command: str) -> None:
    """Exit 1 unless a broker is set (`check_broker`: and answers)."""
    if not settings.broker_url:
        _fail(
            f"{command} needs a broker: set NURTURE_BROKER_URL=redis://host:6379/0 or "
            "amqp://user:password@host:5672/ (for everything in one process, use `nurture run`)"
        )


def check_broker(url: str) -> None:
    """Exit 1 with one line, naming the broker without its password, when it does not answer
    (or refuses our user): better than Dramatiq's retries and tracebacks at start-up."""
    from nurture.runtime.broker import BrokerUnreachable, check_reachable

    try:
        check_reachable(url)
    except BrokerUnreachable as e:
        _fail(str(e))


def _check_database(settings: Settings) -> None:
    """Exit 1 unless the database answers and its schema is at the newest migration."""
    cli_db.migrated_engine(settings.database_url).dispose()


# ---------------------------------------------------------------- deliveries


def report_deliveries(
    unknown: Annotated[
        bool, typer.Option("--unknown", help="List the deliveries whose outcome is unknown.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows.")] = 1000,
    throttled: Annotated[
        bool,
        typer.Option(
            "--throttled", help="Emails deferred by NURTURE_DOMAIN_RATES, per receiving domain."
        ),
    ] = False,
) -> None:
    """Deliveries by status; with --unknown, each delivery a crash left undecided; with
    --throttled, the deferrals of each receiving domain's rate."""
    from nurture.runtime.operations import status_counts, unknown_deliveries

    settings = _settings()
    if throttled:
        _report_throttled(settings, as_json)
        return
    with _session(settings) as session:
        rows = unknown_deliveries(session, limit) if unknown else []
        counts = {} if unknown else status_counts(session)
    if as_json:
        data: Any = [r.to_json() for r in rows] if unknown else counts
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    console = cli_lang._console(sys.stdout)
    if not sys.stdout.isatty():
        console.width = 240  # a pipe or a file: rows whole, never cut at 80 columns
    if not unknown:
        table = Table("status", "deliveries", box=None, pad_edge=False)
        for status, count in counts.items():
            table.add_row(status, str(count))
        console.print(table)
        return
    if not rows:
        console.print(Text("no unknown deliveries"))
        return
    table = Table(
        "id",
        "lead",
        "to",
        "campaign",
        "step",
        "channel",
        "template",
        "message id",
        "created",
        box=None,
        pad_edge=False,
    )
    for r in rows:
        table.add_row(
            str(r.id),
            str(r.lead_id),
            r.to or "",
            r.campaign,
            f"{r.step}#{r.iteration}",
            r.channel,
            r.template,
            r.message_id,
            f"{r.created_at:%Y-%m-%d %H:%M:%S}",
        )
    console.print(table)
    console.print(
        Text(
            f"{len(rows)} unknown: each may or may not have gone out. Check, then "
            "`nurture deliveries release ID...` to resend, or add --delivered if it arrived."
        )
    )


def _report_throttled(settings: Settings, as_json: bool) -> None:
    from nurture.runtime.operations import throttle_counts

    with _session(settings) as session:
        rows = throttle_counts(session)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    console = cli_lang._console(sys.stdout)
    if not rows:
        console.print(Text("no email was deferred by a domain's rate"))
        return
    table = Table("domain", "deferrals", "deliveries", "waiting", "last", box=None, pad_edge=False)
    for r in rows:
        table.add_row(
            r["domain"], str(r["deferrals"]), str(r["deliveries"]), str(r["waiting"]), r["last"]
        )
    console.print(table)


def release_command(
    ids: Annotated[list[int], typer.Argument(metavar="ID...", help="Unknown deliveries.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit note.")] = "",
    delivered: Annotated[
        bool,
        typer.Option("--delivered", help="It did arrive: mark it sent and move on, no resend."),
    ] = False,
) -> None:
    """Release unknown deliveries for resending (or confirm them delivered); all or none."""
    from nurture.runtime.operations import ReleaseError, release

    settings = _settings()
    who = os.environ.get("USER") or os.environ.get("USERNAME") or "operator"
    try:
        with _session(settings) as session, session.begin():
            woken = release(
                session, ids, datetime.now(UTC), by=who, reason=reason, delivered=delivered
            )
    except ReleaseError as e:
        _fail(str(e))
    what = "marked delivered" if delivered else "released for resending"
    typer.echo(f"{len(ids)} deliveries {what}; {len(woken)} enrollments due now")


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    """A session on the configured database; exit 1 with the reason when it is unusable."""
    from nurture.runtime.database import runtime_engine, sessions_for

    where = cli_db._redacted(settings.database_url)
    try:
        engine = runtime_engine(settings.database_url)
        try:
            with sessions_for(engine)() as session:
                yield session
        finally:
            engine.dispose()
    except cli_db._FAILURES as e:
        _fail(f"cannot use the database {where}: {cli_db._why(e)}")
