"""Messages to an MQL's owner: written with the assignment, built from the lead's story.

`queue` writes one ``pending`` `Notice` per ``notify by`` line of the routing,
in the transaction that assigned the MQL (or that found its reminder due), so
a crash loses none. `after_commit` hands the new ids to a sender the moment
that transaction commits (a worker sends them at once); the scheduler sends
whatever is still pending on its next tick. `nurture.runtime.notifying` sends
them, each built by `nurture.handoff.messages`. This module writes rows only,
so `assign` may use it.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from nurture.models import Assignment, Notice

logger = logging.getLogger("nurture.handoff")

PENDING: Final = "nurture.notices"
"""The `Session.info` key under which a transaction keeps the ids of the notices it queued."""


def queue(
    session: Session, assignment: Assignment, routing: Mapping[str, Any], kind: str, now: datetime
) -> list[Notice]:
    """One pending notice per ``notify by`` channel for the assignment's owner."""
    if assignment.owner is None:
        return []
    made = [
        Notice(
            assignment_id=assignment.id,
            lead_id=assignment.lead_id,
            owner=assignment.owner,
            kind=kind,
            channel=str(line["channel"]),
            template=str(line["template"]),
            created_at=now,
        )
        for line in routing.get("notify") or ()
    ]
    session.add_all(made)
    session.flush()
    session.info.setdefault(PENDING, []).extend(n.id for n in made)
    return made


_watched: weakref.WeakSet[sessionmaker[Session]] = weakref.WeakSet()


def after_commit(sessions: sessionmaker[Session], deliver: Callable[[list[int]], None]) -> None:
    """Call `deliver(ids)` with the notices each transaction of `sessions` queued, once it
    committed: the owner hears at once, whatever wrote the MQL (an API call, a worker's
    batch). A failing `deliver` loses nothing: the scheduler sends pending notices too.
    Once per sessionmaker: a second call changes nothing."""
    if sessions in _watched:
        return
    _watched.add(sessions)

    @event.listens_for(sessions, "after_commit")
    def _committed(session: Session) -> None:
        ids = session.info.pop(PENDING, None)
        if ids:
            try:
                deliver(list(ids))
            except Exception:
                logger.exception("handing notices %s over failed; the scheduler sends them", ids)

    @event.listens_for(sessions, "after_rollback")
    def _rolled_back(session: Session) -> None:
        session.info.pop(PENDING, None)
