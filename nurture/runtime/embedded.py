"""``nurture run``: scheduler, workers and the tracking service in one process.

The embedded mode needs no services: the database is a SQLite file, the
broker Dramatiq's `StubBroker` consumed by `dramatiq.Worker` threads in this
process, and email goes to the outbox folder. On start it upgrades the
schema, deploys the campaigns and, if asked, adds demo leads, some of whom
read their email (`demo_readers`); then the scheduler polls until the run's
duration has passed (or Ctrl-C).

Time may run faster: with ``speed`` 86400 a day of campaign time passes each
second, so waits end, send windows open and the flow of a welcome campaign
shows within a minute. Everything reads the same `AcceleratedClock`: the
scheduler, the workers and the tracking service.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dramatiq
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import func, select

from nurture import db
from nurture.config import ConfigError, Settings
from nurture.engine.clock import Clock, SystemClock
from nurture.models import Assignment, Delivery, Enrollment, Event, Lead, MqlRecord, Notice
from nurture.runtime import broker as brokers
from nurture.runtime import process
from nurture.runtime.clock import AcceleratedClock
from nurture.runtime.demo import add_demo_leads, demo_profiles
from nurture.runtime.demo_readers import DemoReaders, Reading
from nurture.runtime.deploying import campaign_files, deploy_sources
from nurture.runtime.notifying import notice_sender
from nurture.runtime.process import Hooks, Runtime
from nurture.runtime.scheduler import Scheduler
from nurture.store.deploy import Outcome
from nurture.tokens import TokenSigner

logger = logging.getLogger("nurture.runtime")

MAX_TICK = timedelta(minutes=10)
"""The most campaign time between two scheduler polls."""
MIN_POLL = 0.05
"""The least real time between two scheduler polls, in seconds."""
DRAIN_SECONDS = 5.0
"""Real seconds the batches queued when the run ends may still render; the touches left
after that are handed back (``pending``, sent by the next run), so the run ends on time
even when a campaign's templates are slow."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What ``nurture run`` was asked to do."""

    paths: tuple[Path, ...] = ()
    """Campaign files or folders to deploy first (none: what is deployed already)."""
    speed: float = 1.0
    """Seconds of campaign time per real second."""
    duration: timedelta | None = None
    """Stop after this much campaign time; None: run until interrupted."""
    demo_leads: int = 0
    seed: int | None = None
    tracking: bool = True
    """Serve the tracking service on the host and port of ``NURTURE_BASE_URL``."""


@dataclass(slots=True)
class Summary:
    """What the run did, for the closing table."""

    started: datetime
    ended: datetime
    deployed: list[Outcome] = field(default_factory=list)
    demo_leads: int = 0
    leads: int = 0
    enrollments: dict[str, int] = field(default_factory=dict)
    deliveries: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """Count by (campaign step's template, channel, status)."""
    tracking_url: str | None = None
    reading: Reading | None = None
    """What the demo readers opened and clicked (None: no demo readers)."""
    mqls: int = 0
    reassigned: int = 0
    """Hand-overs the SLA made: MQLs nobody accepted in time, to the next member or up."""
    notices: dict[str, int] = field(default_factory=dict)
    """Messages to owners by status."""


Say = Callable[[str], None]


def run_embedded(
    settings: Settings, options: RunOptions, say: Say, stop: threading.Event | None = None
) -> Summary:
    """Run everything until `options.duration` of campaign time passed, or `stop` is set."""
    stop = stop or threading.Event()
    if options.seed is None:
        options = replace(options, seed=int(time.time()))
    clock: Clock = (
        AcceleratedClock(options.speed, running=False) if options.speed != 1 else SystemClock()
    )
    db.upgrade(settings.database_url)
    runtime = Runtime.start(settings, clock, name="embedded")
    summary = Summary(clock.now(), clock.now())
    try:
        if options.paths:
            summary.deployed = deploy_sources(
                runtime.sessions, campaign_files(options.paths), clock.now(), settings.templates
            )
            say(_deployed(summary.deployed))
        if options.demo_leads:
            summary.demo_leads = _demo(runtime, options, clock.now())
            say(f"added {summary.demo_leads} demo leads")
        _serve(runtime, settings, options, say, stop, summary)
    finally:
        summary.ended = clock.now()
        _count(runtime, summary)
        runtime.close()
    return summary


def _serve(
    runtime: Runtime,
    settings: Settings,
    options: RunOptions,
    say: Say,
    stop: threading.Event,
    summary: Summary,
) -> None:
    broker = _stub_broker()
    import nurture.runtime.actors  # noqa: F401  (declares the actor on the stub broker)

    process.install(runtime)
    queue = brokers.Queue(broker)
    worker = dramatiq.Worker(broker, queues={brokers.QUEUE}, worker_threads=settings.worker_threads)
    hooks = Hooks(
        runtime.sessions,
        runtime.clock,
        queue,
        graphs=runtime.graphs,
        batch_size=settings.batch_size,
    )
    server = _tracking(runtime, settings, hooks, say) if options.tracking else None
    scheduler = Scheduler(
        runtime.sessions,
        runtime.clock,
        settings,
        queue,
        backlog=queue.backlog,
        graphs=runtime.graphs,
        notices=notice_sender(runtime).send_pending,
    )
    readers: DemoReaders | None = None
    worker.start()
    try:
        if server is not None:
            summary.tracking_url = server.start()
            if options.demo_leads and settings.smtp_url is None:
                readers = DemoReaders(settings.outbox, summary.tracking_url, options.seed or 0)
                summary.reading = readers.reading
        _loop(scheduler, runtime, options, say, stop, readers)
        runtime.executor.finish_rendering_by(time.monotonic() + DRAIN_SECONDS)
        try:
            broker.join(brokers.QUEUE, timeout=30_000)
        except dramatiq.errors.QueueJoinTimeout:
            say("stopping with messages still queued; the next run picks them up")
    finally:
        worker.stop(timeout=30_000)
        if readers is not None:
            readers.close()
        if server is not None:
            server.stop()
        process.install(None)


def _stub_broker() -> StubBroker:
    """The installed broker, which must be the in-process one, or a new stub broker."""
    installed = brokers._installed
    if installed is None:
        stub = StubBroker()
        brokers.install(stub)
        return stub
    if not isinstance(installed, StubBroker):
        raise ConfigError("nurture run uses the in-process broker; another one is installed")
    installed.declare_queue(brokers.QUEUE)
    return installed


def _loop(
    scheduler: Scheduler,
    runtime: Runtime,
    options: RunOptions,
    say: Say,
    stop: threading.Event,
    readers: DemoReaders | None = None,
) -> None:
    clock = runtime.clock
    if isinstance(clock, AcceleratedClock):
        clock.go()
    end = clock.now() + options.duration if options.duration is not None else None
    interval = poll_interval(runtime.settings.scheduler_interval, options.speed)
    next_note = time.monotonic()
    seen = 0
    while not stop.is_set():
        try:
            if scheduler.tick().expired:
                seen = _sla_moves(runtime, seen, say)
        except Exception:
            logger.exception("scheduler tick failed; trying again")
        if readers is not None:
            try:
                readers.visit()
            except Exception:  # a demo aid must never stop the run
                logger.exception("demo readers failed; going on without them this poll")
        if time.monotonic() >= next_note:
            say(_progress(runtime, clock.now()))
            next_note = time.monotonic() + max(2.0, interval)
        if end is not None and clock.now() >= end:
            break
        stop.wait(interval)
    if isinstance(clock, AcceleratedClock):
        clock.halt()


def _sla_moves(runtime: Runtime, after: int, say: Say) -> int:
    """Say what the SLA clock did since assignment `after`: who lost an MQL to whom, and why;
    the last assignment said."""
    late = Assignment.cause.like("not accepted within%")
    with runtime.sessions() as session:
        rows = session.execute(
            select(Assignment, Lead.email)
            .join(Lead, Lead.id == Assignment.lead_id)
            .where(Assignment.id > after, late)
            .order_by(Assignment.id)
        ).all()
    for row, email in rows:
        to = row.owner or "nobody"
        say(f"{row.at:%a %Y-%m-%d %H:%M} UTC: SLA: {email} {row.cause} → {to} ({row.reason})")
        after = row.id
    return after


def _deployed(outcomes: list[Outcome]) -> str:
    changed = [o for o in outcomes if o.status != "unchanged"]
    campaigns = [o for o in outcomes if o.kind == "campaign"]
    names = ", ".join(f"{o.name} v{o.version}" for o in campaigns) or "no campaigns"
    return f"deployed {len(outcomes)} definitions ({len(changed)} changed): {names}"


def poll_interval(configured: float, speed: float) -> float:
    """Seconds between polls: at most `MAX_TICK` of campaign time, at least `MIN_POLL` real.

    A send window of a few hours must see a poll while it is open, however
    fast the clock runs.
    """
    return max(MIN_POLL, min(configured, MAX_TICK.total_seconds() / speed))


def _progress(runtime: Runtime, now: datetime) -> str:
    with runtime.sessions() as session:
        sent = session.scalar(select(func.count()).where(Delivery.status == "sent")) or 0
        opened = session.scalar(select(func.count()).where(Event.type == "opened")) or 0
        running = session.scalar(
            select(func.count()).where(Enrollment.state.in_(("active", "waiting")))
        )
    return (
        f"{now:%a %Y-%m-%d %H:%M} UTC: {sent} sent, {opened} opened, "
        f"{running or 0} enrollments running"
    )


def _demo(runtime: Runtime, options: RunOptions, now: datetime) -> int:
    if runtime.settings.smtp_url is not None:
        raise ConfigError(
            "--demo-leads writes real-looking addresses: it works only with the outbox "
            "(unset NURTURE_SMTP_URL)"
        )
    seed = options.seed or 0  # `run_embedded` chose one if none was given
    with runtime.sessions() as session, session.begin():
        graphs = [v.graph for v in runtime.graphs.current(session)]
        return add_demo_leads(session, demo_profiles(options.demo_leads, seed, graphs), now, seed)


def _count(runtime: Runtime, summary: Summary) -> None:
    with runtime.sessions() as session:
        summary.leads = session.scalar(select(func.count()).select_from(Lead)) or 0
        summary.enrollments = {
            state: int(count)
            for state, count in session.execute(
                select(Enrollment.state, func.count()).group_by(Enrollment.state)
            )
        }
        rows = session.execute(
            select(Delivery.template, Delivery.channel, Delivery.status, func.count()).group_by(
                Delivery.template, Delivery.channel, Delivery.status
            )
        )
        summary.deliveries = {(t, c, s): int(n) for t, c, s, n in rows}
        summary.mqls = session.scalar(select(func.count()).select_from(MqlRecord)) or 0
        late = Assignment.cause.like("not accepted within%") & Assignment.owner.is_not(None)
        summary.reassigned = session.scalar(select(func.count()).where(late)) or 0
        notices = select(Notice.status, func.count()).group_by(Notice.status)
        summary.notices = {str(status): int(n) for status, n in session.execute(notices)}


class _Tracking:
    """The tracking service under uvicorn in a thread, on the host and port of the base URL."""

    def __init__(self, app: Any, settings: Settings) -> None:
        import uvicorn

        parts = urlsplit(settings.base_url)
        self.url = settings.base_url
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        config = uvicorn.Config(
            app, host=self.host, port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="nurture-tracking", daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(
                    f"the tracking service could not listen on {self.host}:{self.port} "
                    "(is the port in use? set NURTURE_BASE_URL to another one)"
                )
            time.sleep(0.02)
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _tracking(runtime: Runtime, settings: Settings, hooks: Hooks, say: Say) -> _Tracking | None:
    try:
        from nurture.tracking import create_app
        from nurture.tracking.config import lead_rules
    except ImportError as e:  # pragma: no cover - the service ships with nurture now
        say(f"the tracking service is not available ({e}); opens and clicks are not recorded")
        return None
    from dsl.templates import FileTemplates
    from nurture.console import Lockout, create_console
    from nurture.console.invites import Mailer
    from nurture.deliverability.esp import EspConfig
    from nurture.render import Renderer

    keys = list(settings.secret_keys())
    signer = TokenSigner(keys, clock=runtime.clock.now)
    lockout = Lockout(settings.console_lockout_attempts, settings.console_lockout_seconds)
    renderer = Renderer(FileTemplates(settings.templates), signer, settings.base_url)
    mailer = Mailer(
        settings.base_url,
        settings.sender_domain(),
        lambda messages: runtime.send_loop.send_all(messages, settings.send_concurrency),
        timedelta(seconds=settings.console_invite_seconds),
    )
    console = create_console(
        runtime.sessions,
        keys,
        clock=runtime.clock,
        lockout=lockout,
        renderer=renderer,
        mailer=mailer,
    )
    app = create_app(
        runtime.sessions,
        signer,
        api_key=settings.api_key,
        lead_rules=lead_rules(settings),
        esp=EspConfig.of(settings),
        on_wake=hooks.on_wake,
        on_lead=hooks.on_lead,
        clock=runtime.clock,
        console=console,
    )
    return _Tracking(app, settings)


_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
    "w": 604800,
    "week": 604800,
}


_LONGEST = timedelta(days=36500)
"""The longest run: campaign time must stay within the calendar, which ends at year 9999."""


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``3d``, ``2w``, ``3 days``; `ValueError` otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+?)s?\s*", text.lower())
    if match is None or match.group(2) not in _UNITS:
        raise ValueError(f"not a duration: {text!r} (write 90s, 15m, 2h, 3d or 2w)")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > _LONGEST.total_seconds():
        raise ValueError(f"{text!r} is longer than 100 years")
    return timedelta(seconds=seconds)
