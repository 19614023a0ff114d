"""Messages to an MQL's owner: written with the assignment, built from the lead's story.

`queue` writes one ``pending`` `Notice` per ``notify by`` line of the routing,
in the transaction that assigned the MQL (or that found its reminder due), so
a crash loses none; `nurture.runtime.notifying` sends them (each built by
`nurture.handoff.messages`). This module reads and writes rows only, so
`assign` may use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from nurture.models import Assignment, Notice


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
    return made
