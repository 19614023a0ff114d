"""One process's runtime: settings, clock, database, channels, renderer and executor.

A worker process makes its `Runtime` once, on its first message (or at boot),
and every worker thread shares it: one connection pool, one event loop with
the channels and their persistent SMTP connections, one cache of step
graphs. ``nurture run`` and tests make their own and `install` it, with the
clock they want.

`Hooks` are the two callbacks the tracking service calls after it commits:
``on_wake(ids)`` enqueues the enrollments an event made due, ``on_lead(id,
created)`` runs the lead's enrollment triggers and enqueues what they
created. Both are immediate; the scheduler's poll would find the same work
a moment later, so a hook that fails loses nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from channels import Channel, OutboundMessage, Receipt
from dsl.sandbox import Limits
from dsl.templates import FileTemplates
from nurture.config import Settings
from nurture.engine.clock import Clock, SystemClock
from nurture.models import Enrollment
from nurture.render import Renderer
from nurture.runtime.database import runtime_engine, sessions_for
from nurture.runtime.enrolling import check_lead, current_triggers
from nurture.runtime.executor import Executor
from nurture.runtime.handover import Handoff, Ledger
from nurture.runtime.loading import CachedTemplates, Graphs
from nurture.runtime.observer import Observer
from nurture.runtime.sending import SendLoop, make_channels
from nurture.tokens import TokenSigner

logger = logging.getLogger("nurture.runtime")

Enqueue = Callable[[Sequence[int], str | None], None]
"""Sends one batch of enrollment ids (and the lease they were claimed under) to the workers."""


@dataclass
class Runtime:
    """Everything a worker process shares between its threads."""

    settings: Settings
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session]
    graphs: Graphs
    send_loop: SendLoop
    executor: Executor
    closed: bool = field(default=False)

    @classmethod
    def start(
        cls,
        settings: Settings,
        clock: Clock | None = None,
        *,
        observer: Observer | None = None,
        channels: Callable[[], Mapping[str, Channel]] | None = None,
        name: str = "worker",
    ) -> Runtime:
        """Connect to the database and open the channels (`channels` replaces the configured)."""
        clock = clock or SystemClock()
        engine = runtime_engine(
            settings.database_url,
            pool_size=settings.worker_threads + 2,
            statement_timeout=settings.statement_timeout,
        )
        sessions = sessions_for(engine)
        graphs = Graphs()
        ledger = Ledger(engine, clock, settings.max_attempts)
        send_loop = SendLoop(channels or (lambda: make_channels(settings)), ledger)
        signer = TokenSigner(list(settings.secret_keys()), clock=clock.now)
        templates = CachedTemplates(FileTemplates(settings.templates))
        limits = Limits(settings.render_max_size, settings.render_seconds)
        renderer = Renderer(templates, signer, settings.base_url, limits=limits)

        def send_all(
            messages: Sequence[OutboundMessage], handoffs: Sequence[Handoff]
        ) -> list[Receipt | None]:
            return send_loop.send_all(messages, settings.send_concurrency, handoffs)

        executor = Executor(
            sessions,
            clock,
            settings,
            renderer,
            send_all,
            graphs=graphs,
            observer=observer,
            name=name,
        )
        return cls(settings, clock, engine, sessions, graphs, send_loop, executor)

    def close(self) -> None:
        """Close the channels and the connection pool (idempotent)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.send_loop.close()
        finally:
            self.engine.dispose()


_lock = threading.Lock()
_current: Runtime | None = None
_own = False
"""Whether `current` started the runtime (then `close_own` closes it)."""


def install(runtime: Runtime | None) -> None:
    """Make `runtime` the one this process's actors use (None: forget it); the caller closes it."""
    global _current, _own
    with _lock:
        _current, _own = runtime, False


def current() -> Runtime:
    """This process's runtime, started from the environment's settings on first use."""
    global _current, _own
    with _lock:
        if _current is None:
            _current, _own = Runtime.start(Settings.load()), True
        return _current


def stop_handing() -> None:
    """Shutting down: nothing more is rendered, the channels take no more messages; sends
    on the wire finish."""
    with _lock:
        runtime = _current
    if runtime is not None:
        runtime.executor.stop_rendering()
        runtime.send_loop.stop_handing()


def close_own() -> None:
    """Close the runtime `current` started, if it did."""
    global _current, _own
    with _lock:
        runtime, own = _current, _own
        if own:
            _current, _own = None, False
    if runtime is not None and own:
        runtime.close()


class Hooks:
    """``on_wake`` and ``on_lead`` for the tracking service (`nurture.tracking.create_app`)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        enqueue: Enqueue,
        *,
        graphs: Graphs | None = None,
        batch_size: int = 250,
        notify: Callable[[Sequence[int]], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.enqueue = enqueue
        self.notify = notify or (lambda ids: None)
        """Hands the ids of notices a transaction committed to the workers."""
        self.graphs = graphs or Graphs()
        self.batch_size = batch_size

    def on_wake(self, ids: list[int]) -> None:
        """Enqueue the woken enrollments now; run their leads' triggers (for the new event)."""
        for start in range(0, len(ids), self.batch_size):
            self.enqueue(ids[start : start + self.batch_size], None)
        with self.sessions() as session, session.begin():
            leads = session.scalars(
                select(Enrollment.lead_id).where(Enrollment.id.in_(ids)).distinct()
            ).all()
        for lead_id in leads:
            self.on_lead(lead_id, False)

    def on_lead(self, lead_id: int, created: bool) -> None:
        """Run the lead's triggers (created, tagged, events) and enqueue what they enrolled."""
        with self.sessions() as session, session.begin():
            triggers = current_triggers(session, self.graphs)
            enrolled = check_lead(session, lead_id, triggers, self.clock.now()) or []
        if enrolled:
            self.enqueue(enrolled, None)


_hooks: Hooks | None = None


def default_hooks() -> Hooks:
    """Hooks on the configured database and broker (``NURTURE_*``), made on first use.

    Without ``NURTURE_BROKER_URL`` there is no queue to reach from another
    process: ``on_wake`` then only runs triggers and the scheduler's next poll
    runs the enrollments (``nurture run`` wires its own hooks to its queue).
    """
    global _hooks
    with _lock:
        if _hooks is None:
            from nurture.runtime.broker import Queue, make_broker

            settings = Settings.load()
            engine = runtime_engine(
                settings.database_url, statement_timeout=settings.statement_timeout
            )
            enqueue: Enqueue = _nowhere
            notify = None
            if settings.broker_url:
                queue = Queue(make_broker(settings))
                enqueue, notify = queue, queue.notices
            _hooks = Hooks(
                sessions_for(engine),
                SystemClock(),
                enqueue,
                batch_size=settings.batch_size,
                notify=notify,
            )
        return _hooks


def _nowhere(ids: Sequence[int], lease: str | None = None) -> None:
    """No broker in this process: the scheduler's next poll finds the work."""


def on_wake(ids: list[int]) -> None:
    """The tracking service's ``on_wake``: run the woken enrollments now (`default_hooks`)."""
    default_hooks().on_wake(ids)


def on_notices(ids: list[int]) -> None:
    """The tracking service's notices, once committed: to the workers now (`default_hooks`)."""
    default_hooks().notify(ids)


def on_lead(lead_id: int, created: bool) -> None:
    """The tracking service's ``on_lead``: enroll the lead by its triggers now (`default_hooks`)."""
    default_hooks().on_lead(lead_id, created)
