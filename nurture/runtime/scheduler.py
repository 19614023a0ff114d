"""The scheduler: enrolls leads, finds due enrollments and hands them to the workers in batches.

Each `tick`:

1. runs the enrollment triggers of new leads, tags and events
   (`nurture.runtime.enrolling.check_lead`), up to a batch of leads at a time;
2. reassigns or escalates MQLs whose SLA ran out and reminds owners before
   their deadline (`nurture.handoff.sla`), then sends the owners' notices
   (`nurture.runtime.notifying`);
3. now and then (``sweep_interval``), rescores leads whose interest decayed
   since their last rescore (and applies the MQL rule), then sweeps for
   ``enroll when inactive for`` and ``enroll when segment`` (sooner while a
   sweep finds a full batch);
4. claims due enrollments, a batch at a time, under a lease, and enqueues
   each batch as one message of ids; it stops when nothing is due, or when
   the broker already holds `MAX_BACKLOG` batches (the workers are behind, and
   claiming more would only let leases run out in the queue).

Several schedulers may run against PostgreSQL (``FOR UPDATE SKIP LOCKED``
keeps them apart); with SQLite, run one. A scheduler that dies mid-tick
loses nothing: what it claimed comes due again when its lease runs out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.orm import Session, sessionmaker

from nurture.config import Settings
from nurture.engine.clock import Clock
from nurture.handoff import sla
from nurture.runtime import claims
from nurture.runtime.clock import span
from nurture.runtime.enrolling import (
    check_lead,
    current_triggers,
    sweep_inactive,
    sweep_segments,
    unchecked_leads,
)
from nurture.runtime.loading import Graphs
from nurture.runtime.process import Enqueue
from nurture.store.scoring import rescore_decayed

logger = logging.getLogger("nurture.runtime")

MAX_BACKLOG: Final = 64
"""Batches waiting in the broker above which a tick enqueues nothing more."""
MAX_BATCHES_PER_TICK: Final = 256
QUIET_SECONDS: Final = 10.0
"""The least time between two warnings that the broker is down."""


@dataclass(slots=True)
class TickReport:
    """What one tick did."""

    enrolled: list[int] = field(default_factory=list)
    """Enrollments created by triggers and sweeps."""
    checked: int = 0
    """Leads whose new creation, tags or events were run through the triggers."""
    rescored: int = 0
    """Leads rescored because their interest decayed."""
    expired: int = 0
    """MQLs whose SLA ran out: reassigned, escalated or reminded."""
    reminded: int = 0
    """MQLs whose owner was reminded before the deadline."""
    notices: int = 0
    """Messages to owners handed to a channel (new MQLs, reminders)."""
    batches: int = 0
    enqueued: int = 0
    """Enrollments handed to the workers."""
    failed: str | None = None
    """Why enqueueing stopped early (the broker is down), if it did."""


class Scheduler:
    """Polls the database for work and enqueues it; `run` loops, `tick` polls once."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        settings: Settings,
        enqueue: Enqueue,
        *,
        backlog: Callable[[], int | None] | None = None,
        graphs: Graphs | None = None,
        notices: Callable[[int], int] | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.settings = settings
        self.enqueue = enqueue
        self.backlog = backlog or (lambda: None)
        self.graphs = graphs or Graphs()
        self.notices = notices
        """Sends up to N pending notices to owners (`NoticeSender.send_pending`); None: none."""
        self._next_sweep: datetime | None = None
        self._warned = -QUIET_SECONDS

    def run(self, stop: threading.Event, *, once: bool = False) -> None:
        """Tick every ``scheduler_interval`` seconds until `stop` is set (or once)."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # the database may be down for a moment; keep polling
                logger.exception("scheduler tick failed; trying again")
            if once:
                return
            stop.wait(self.settings.scheduler_interval)

    def tick(self) -> TickReport:
        report = TickReport()
        self.check_triggers(report)
        self.expire_slas(report)
        self.send_notices(report)
        now = self.clock.now()
        if self._next_sweep is None or now >= self._next_sweep:
            full = self.sweep(now, report)
            later = timedelta(seconds=0 if full else self.settings.sweep_interval)
            self._next_sweep = now + later
        self.dispatch(report)
        return report

    def check_triggers(self, report: TickReport) -> None:
        """Enroll leads on their unchecked creation, tags and events, a batch at a time."""
        limit = self.settings.batch_size
        for _ in range(MAX_BATCHES_PER_TICK):
            checked = 0
            with self.sessions() as session, session.begin():
                lead_ids = unchecked_leads(session, limit)
                if lead_ids:
                    triggers = current_triggers(session, self.graphs)
                    now = self.clock.now()
                    for lead_id in lead_ids:
                        created = check_lead(session, lead_id, triggers, now)
                        if created is not None:  # None: another scheduler has the lead
                            checked += 1
                            report.enrolled += created
            report.checked += checked
            if len(lead_ids) < limit or not checked:
                return

    def expire_slas(self, report: TickReport) -> None:
        """Reassign or escalate MQLs nobody accepted in time, a batch at a time."""
        limit = self.settings.batch_size
        for _ in range(MAX_BATCHES_PER_TICK):
            with self.sessions() as session, session.begin():
                expired = sla.sweep(session, self.clock.now(), limit)
            report.expired += len(expired)
            if len(expired) < limit:
                break
        for _ in range(MAX_BATCHES_PER_TICK):
            with self.sessions() as session, session.begin():
                reminded = sla.remind(session, self.clock.now(), limit)
            report.reminded += len(reminded)
            if len(reminded) < limit:
                return

    def send_notices(self, report: TickReport) -> None:
        """Send the notices new MQLs, reassignments and reminders queued for owners."""
        if self.notices is None:
            return
        for _ in range(MAX_BATCHES_PER_TICK):
            sent = self.notices(self.settings.batch_size)
            report.notices += sent
            if sent < self.settings.batch_size:
                return

    def sweep(self, now: datetime, report: TickReport) -> bool:
        """Rescore leads whose interest decayed, then ``enroll when inactive for`` and
        ``enroll when segment``: enroll the leads that qualify now (a segment on
        interest sees the decayed scores). True when a batch was full, so more may
        be waiting."""
        size = self.settings.batch_size
        with self.sessions() as session, session.begin():
            rescored = rescore_decayed(session, now, size)
        report.rescored += len(rescored)
        with self.sessions() as session, session.begin():
            triggers = current_triggers(session, self.graphs)
            created = sweep_inactive(session, triggers, now, size)
            created += sweep_segments(session, triggers, now, size)
        report.enrolled += created
        return len(created) >= size or len(rescored) >= size

    def dispatch(self, report: TickReport) -> None:
        """Claim due enrollments a batch at a time and enqueue each batch."""
        size = self.settings.batch_size
        for _ in range(MAX_BATCHES_PER_TICK):
            try:
                waiting = self.backlog()
            except Exception as e:  # the broker is down; nothing is claimed meanwhile
                self._broker_down(report, e)
                return
            if waiting is not None and waiting >= MAX_BACKLOG:
                return
            token = claims.new_token("scheduler")
            now = self.clock.now()
            until = now + span(self.clock, self.settings.lease_seconds)
            with self.sessions() as session, session.begin():
                ids = claims.claim_due(session, size, token, now, until)
            if not ids:
                return
            if not self._enqueue(ids, token, report):
                return
            if len(ids) < size:
                return

    def _enqueue(self, ids: Sequence[int], token: str, report: TickReport) -> bool:
        try:
            self.enqueue(ids, token)
        except Exception as e:  # the broker is down: the lease runs out, the work comes back
            self._broker_down(report, e)
            return False
        report.batches += 1
        report.enqueued += len(ids)
        return True

    def _broker_down(self, report: TickReport, error: Exception) -> None:
        """Note why nothing more is enqueued; say so at most every `QUIET_SECONDS`."""
        report.failed = f"the broker is unavailable: {type(error).__name__}: {error}"
        now = time.monotonic()
        if now - self._warned >= QUIET_SECONDS:
            self._warned = now
            logger.warning("%s; trying again every poll", report.failed)
