"""Leases on enrollments: who may run one now, and until when.

The scheduler claims due enrollments under a batch token and enqueues the
token with their ids; the job that receives the message claims them again
under its own token, but only those still claimed under the message's token,
or unclaimed (or whose lease ran out) and still due. So:

- a message delivered twice finds its enrollments done and released (or
  claimed by a newer batch) and does nothing;
- a message lost with a broker is recreated: its lease runs out and the
  scheduler's next poll claims the enrollments again;
- two schedulers never claim one enrollment (PostgreSQL: ``FOR UPDATE SKIP
  LOCKED``; SQLite: one writer at a time).

A job releases its claims when it stores the enrollments' new state, and
only where it still holds them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from sqlalchemy import ColumnElement, and_, false, or_, select, update
from sqlalchemy.orm import Session

from nurture.models import Enrollment
from nurture.runtime.database import among, is_postgres

RUNNING: Final = ("active", "waiting")
"""Enrollment states the scheduler runs; done and exited ones never run again."""


def new_token(kind: str) -> str:
    """A claim token, unique to one batch or job: ``scheduler:1f3c...``."""
    return f"{kind}:{uuid.uuid4().hex}"


def _free(now: datetime) -> ColumnElement[bool]:
    return or_(Enrollment.claimed_by.is_(None), Enrollment.claimed_until < now)


def claim_due(
    session: Session, limit: int, token: str, now: datetime, until: datetime
) -> list[int]:
    """Claim up to `limit` due, unclaimed enrollments under `token`, earliest due first."""
    query = (
        select(Enrollment.id)
        .where(Enrollment.state.in_(RUNNING), Enrollment.next_run_at <= now, _free(now))
        .order_by(Enrollment.next_run_at, Enrollment.id)
        .limit(limit)
    )
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    ids = list(session.scalars(query))
    if ids:
        session.execute(
            update(Enrollment)
            .where(among(session, Enrollment.id, ids))
            .values(claimed_by=token, claimed_until=until)
            .execution_options(synchronize_session=False)
        )
    return ids


def claim_for_job(
    session: Session,
    ids: Sequence[int],
    lease: str | None,
    me: str,
    now: datetime,
    until: datetime,
) -> list[int]:
    """Take over the enrollments of a message: those still under `lease`, or free and due.

    Under the message's own lease an enrollment is taken whatever this
    machine's clock says: the scheduler found it due, and a clock a little
    behind must not turn the work away again and again.
    """
    mine = Enrollment.claimed_by == lease if lease is not None else false()
    rows = session.execute(
        update(Enrollment)
        .where(
            among(session, Enrollment.id, ids),
            Enrollment.state.in_(RUNNING),
            or_(mine, and_(_free(now), Enrollment.next_run_at <= now)),
        )
        .values(claimed_by=me, claimed_until=until)
        .returning(Enrollment.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(rows.scalars())


def release(session: Session, ids: Sequence[int], me: str) -> None:
    """Give up the claims `me` still holds on `ids`, changing nothing else."""
    if ids:
        session.execute(
            update(Enrollment)
            .where(and_(among(session, Enrollment.id, ids), Enrollment.claimed_by == me))
            .values(claimed_by=None, claimed_until=None)
            .execution_options(synchronize_session=False)
        )
