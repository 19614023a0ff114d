"""Running campaigns for real: scheduler, Dramatiq actors, deliveries exactly once.

    scheduler ─claims due enrollments, a batch per message─→ broker (Redis, or in-process)
    actor (`actors.run_enrollments`) → `Executor.run(ids, lease)`:
        claim → load → `engine.decide` → delivery rows (pending, committed) → channels
        → statuses, actions, new state (one transaction)
    tracking service → `on_wake` / `on_lead` → enqueue at once

Modules: `executor` (one batch, the three steps), `touches` (what to send,
rendered), `recording` (statuses, actions, states), `claims` (leases),
`loading` (rows to the core's data), `enrolling` (triggers, exactly once),
`sending` (channels on an event loop, receipts), `scheduler`, `broker` and
`actors` (Dramatiq; importing `actors` declares the actor on the broker set
first), `process` (one process's `Runtime`, the hooks), `operations`
(unknown deliveries), `embedded` (``nurture run``), `clock`
(`AcceleratedClock`). Importing this package does not import the actors.
"""

from __future__ import annotations

from nurture.runtime.clock import AcceleratedClock, span
from nurture.runtime.executor import Executor
from nurture.runtime.keys import Key, message_id
from nurture.runtime.observer import BatchReport, Observer
from nurture.runtime.operations import ReleaseError, UnknownDelivery, release, unknown_deliveries
from nurture.runtime.process import (
    Hooks,
    Runtime,
    default_hooks,
    on_lead,
    on_notices,
    on_wake,
)
from nurture.runtime.scheduler import Scheduler, TickReport

__all__ = [
    "AcceleratedClock",
    "BatchReport",
    "Executor",
    "Hooks",
    "Key",
    "Observer",
    "ReleaseError",
    "Runtime",
    "Scheduler",
    "TickReport",
    "UnknownDelivery",
    "default_hooks",
    "message_id",
    "on_lead",
    "on_notices",
    "on_wake",
    "release",
    "span",
    "unknown_deliveries",
]
