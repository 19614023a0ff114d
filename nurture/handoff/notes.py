"""Notes on leads: sales and SDRs write what they learnt; the lead's story shows it.

`add_note` is the one way a note is written, by the command line
(`nurture leads note`), the API (``POST /api/leads/note``) and the console.
From the command line and the API the author is named by the caller, so
it must be a sales member of the deployed routing; a console user is signed
in, so the console passes ``signed_in=True`` and any of its users (a marketer
who is no routing member) may write. The text must say something and stay
under `MAX_NOTE` characters; otherwise `NoteError` (or `NotFound` for an
unknown member) says why and nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from nurture.engine.state import utc
from nurture.handoff.answers import AnswerError, NotFound
from nurture.handoff.route import members
from nurture.models import Lead, LeadNote
from nurture.store.definitions import active_routing

MAX_NOTE: Final = 4000
"""The most characters a note may have: a call's summary, not a document."""


class NoteError(AnswerError):
    """Raised when a note cannot be written: empty, too long."""


def add_note(
    session: Session,
    lead: Lead,
    author: str,
    text: str,
    now: datetime,
    routing: Mapping[str, Any] | None = None,
    *,
    signed_in: bool = False,
) -> LeadNote:
    """Write `author`'s note on `lead` at `now` (the caller commits).

    `routing` is the deployed one unless given: its members may write notes.
    `signed_in`: the author is a console user the console checked (and allowed
    to write on this lead), so they need not be a routing member.
    """
    author = author.strip().lower()
    text = text.strip()
    if not author:
        raise NoteError("say who writes the note (--by)")
    if not signed_in:
        known = members(active_routing(session) if routing is None else routing)
        if author not in known:
            listed = ", ".join(sorted(known)) or "none (deploy a routing file with teams)"
            raise NotFound(f"no sales member {author!r}; members: {listed}")
    if not text:
        raise NoteError("the note is empty: write what you learnt")
    if len(text) > MAX_NOTE:
        raise NoteError(f"the note has {len(text):,} characters; at most {MAX_NOTE:,}")
    note = LeadNote(lead_id=lead.id, author=author, text=text, at=utc(now))
    session.add(note)
    session.flush()
    return note
