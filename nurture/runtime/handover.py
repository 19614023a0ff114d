"""The handover mark: which sends were handed to a channel, and what each one's answer was.

A batch writes its delivery rows ``pending`` before it sends anything. Just
before a message is handed to its channel, its row gets ``handed_at`` and
``handed_by`` (the job's claim token), committed; as soon as the channel
answers, the row gets the answer (``sent``, ``deferred``, ``failed`` or
``unknown``). After a crash, then:

- ``pending`` without a mark: never handed over, simply sent by the next job;
- ``pending`` with a mark: the message may have gone out; the next job makes
  it ``unknown`` (`nurture.runtime.executor`), and only these can be.

So ``unknown`` rows after a crash are at most the sends on the wire at that
moment (the send concurrency of the process), not its whole batches.

A mark is taken only on a row still ``pending``, unmarked, and whose
enrollment the job still holds: of two jobs racing for one touch (a lease
ran out) one hands it over and the other does not, even when both marks ride
in one transaction (two jobs of one process: the mark says which job it went
to). An answer is stored only by the job that marked the row.

The marks and answers of a process's concurrent sends are written together,
one transaction at a time (`GroupCommit`): a send waits for the transaction
that carries its mark, and a round of sends costs about one commit, not one
each.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Text,
    any_,
    bindparam,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from channels import Receipt
from nurture.engine.clock import Clock
from nurture.models import Delivery, Enrollment
from nurture.runtime.database import table_of

logger = logging.getLogger("nurture.runtime")

DELIVERIES: Final = table_of(Delivery)
ENROLLMENTS: Final = table_of(Enrollment)
ANSWERED: Final = ("pending", "unknown")
"""Statuses an answer may replace: not answered yet, or made ``unknown`` by another job
meanwhile (the real answer is better than a guess)."""


@dataclass(slots=True)
class Handoff:
    """One message's row: what to mark before the send, and whether its answer is stored."""

    delivery_id: int
    job: str
    """The claim token of the job sending it."""
    attempts: int
    """Which send of the touch this is (the answer to a transient failure depends on it)."""
    handed: bool = False
    """The mark was committed: the message was handed to the channel."""
    stored: bool = False
    """The channel's answer is committed too."""


def answer_row(
    handoff: Handoff, receipt: Receipt, now: datetime, max_attempts: int
) -> dict[str, Any]:
    """The row values an answer stands for (the same whoever stores it)."""
    status, error = "sent", None
    if receipt.status == "unknown":
        status, error = "unknown", f"unknown: {receipt.detail}"
    elif receipt.status == "failed_transient" and handoff.attempts < max_attempts:
        status, error = "deferred", receipt.detail
    elif receipt.status == "failed_transient":
        status, error = "failed", f"gave up after {handoff.attempts} attempts: {receipt.detail}"
    elif not receipt.ok:
        status, error = "failed", receipt.detail
    sent_at = now if status == "sent" else None
    return {
        "b_id": handoff.delivery_id,
        "b_job": handoff.job,
        "b_status": status,
        "b_error": error,
        "b_sent_at": sent_at,
    }


def store_answers(session: Session | Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Store `answer_row`s where their job still owns the row; failures add to its log."""
    mine = (
        (DELIVERIES.c.id == bindparam("b_id"))
        & (DELIVERIES.c.handed_by == bindparam("b_job"))
        & ((DELIVERIES.c.status == ANSWERED[0]) | (DELIVERIES.c.status == ANSWERED[1]))
    )  # no IN (...): an expanding parameter cannot be used with executemany
    sent = [r for r in rows if r["b_status"] == "sent"]
    other = [r for r in rows if r["b_status"] != "sent"]
    if sent:
        stamp: dict[str, Any] = {"status": bindparam("b_status"), "sent_at": bindparam("b_sent_at")}
        session.execute(update(DELIVERIES).where(mine).values(**stamp), sent)
    if other:
        log = func.coalesce(DELIVERIES.c.error + "\n", "") + bindparam("b_error", type_=Text)
        note: dict[str, Any] = {"status": bindparam("b_status"), "error": log}
        session.execute(update(DELIVERIES).where(mine).values(**note), other)


class Ledger:
    """Writes marks and answers for the sends of one process (Core statements: they are
    many and small)."""

    def __init__(self, engine: Engine, clock: Clock, max_attempts: int) -> None:
        self.engine = engine
        self.clock = clock
        self.max_attempts = max_attempts
        self._postgres = engine.dialect.name == "postgresql"

    def write(
        self, hands: Sequence[Handoff], answers: Sequence[tuple[Handoff, Receipt]]
    ) -> set[tuple[str, int]]:
        """One transaction: store `answers`, then mark `hands`; the (job, delivery id) marked.

        By job, not by delivery alone: two jobs of one process can hand one touch over
        in the same transaction (the first one's lease ran out while its send waited for
        a slot, and the second took it over); only the one the mark went to may send.
        """
        now = self.clock.now()
        marked: set[tuple[str, int]] = set()
        with self.engine.begin() as connection:
            if answers:
                rows = [answer_row(h, r, now, self.max_attempts) for h, r in answers]
                store_answers(connection, rows)
            by_job: dict[str, list[int]] = defaultdict(list)
            for hand in hands:
                by_job[hand.job].append(hand.delivery_id)
            for job, ids in by_job.items():
                held = select(ENROLLMENTS.c.id).where(ENROLLMENTS.c.claimed_by == job)
                chosen = (
                    DELIVERIES.c.id == any_(literal(ids, ARRAY(Integer)))
                    if self._postgres
                    else DELIVERIES.c.id.in_(ids)
                )
                taken = connection.execute(
                    update(DELIVERIES)
                    .where(
                        chosen,
                        DELIVERIES.c.status == "pending",
                        DELIVERIES.c.handed_by.is_(None),
                        DELIVERIES.c.enrollment_id.in_(held),
                    )
                    .values(handed_at=now, handed_by=job)
                    .returning(DELIVERIES.c.id)
                )
                marked.update((job, delivery_id) for delivery_id in taken.scalars())
        return marked


class GroupCommit:
    """Carries the marks and answers of concurrent sends to a `Ledger`, a transaction at a time.

    Lives on the send loop; `hand` waits until its mark is committed (False: not
    handed, do not send), `answer` queues an answer and returns at once.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._hands: list[tuple[Handoff, asyncio.Future[None]]] = []
        self._answers: list[tuple[Handoff, Receipt, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def hand(self, handoff: Handoff) -> bool:
        """Mark `handoff` handed over; whether it was (and so may be sent)."""
        done = asyncio.get_running_loop().create_future()
        self._hands.append((handoff, done))
        self._wake()
        await done
        return handoff.handed

    def answer(self, handoff: Handoff, receipt: Receipt) -> asyncio.Future[None]:
        """Queue the answer; the future is done when it is written (or could not be)."""
        done = asyncio.get_running_loop().create_future()
        self._answers.append((handoff, receipt, done))
        self._wake()
        return done

    def _wake(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_all())

    async def _write_all(self) -> None:
        while self._hands or self._answers:
            hands, self._hands = self._hands, []
            answers, self._answers = self._answers, []
            try:
                marked = await asyncio.to_thread(
                    self.ledger.write, [h for h, _ in hands], [(h, r) for h, r, _ in answers]
                )
                stored = True
            except Exception:  # the batch's record step stores the answers; nothing is handed
                logger.exception("marking %d sends as handed over failed", len(hands))
                marked, stored = set(), False
            for handoff, done in hands:
                handoff.handed = (handoff.job, handoff.delivery_id) in marked
                if not done.done():
                    done.set_result(None)
            for handoff, _receipt, done in answers:
                handoff.stored = stored
                if not done.done():
                    done.set_result(None)
