"""Waking enrollments that wait for an event, so they continue within seconds of it.

``if opened within 3 days`` parks the enrollment in state ``waiting`` with
``waiting_for`` set and its timeout as ``next_run_at``. When the lead does
something, `wake_waiting` makes every such enrollment of the lead due now;
the caller commits and then hands the ids to the runtime, which enqueues them
at once instead of leaving them to the next poll. The engine decides whether
the event is the one awaited: an enrollment woken by the wrong event parks
again with the same deadline. A plain ``wait 3 days`` (no ``waiting_for``) is
not woken.

A worker that holds an enrollment's lease while it is woken may write its own
``next_run_at`` over ours; the enqueued job runs it again anyway, and the
event is in the database for that run to see.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.engine.state import WAITING, utc
from nurture.models import Enrollment


def wake_waiting(session: Session, lead_id: int, now: datetime) -> list[int]:
    """Make the lead's event-waiting enrollments due at `now`; their ids, oldest first.

    ``next_run_at`` only moves earlier, never later; an enrollment already due
    is returned too, so the caller can enqueue it. The caller commits.
    """
    now = utc(now)
    waiting = session.scalars(
        select(Enrollment)
        .where(Enrollment.lead_id == lead_id, Enrollment.state == WAITING)
        .order_by(Enrollment.id)
    )
    ids: list[int] = []
    for enrollment in waiting:
        if not enrollment.waiting_for:  # SQL NULL or JSON null: a plain wait
            continue
        if enrollment.next_run_at is None or enrollment.next_run_at > now:
            enrollment.next_run_at = now
        ids.append(enrollment.id)
    session.flush()
    return ids
