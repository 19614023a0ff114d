"""``POST /api/leads/export-data`` and ``POST /api/leads/forget``: data-subject rights over
the API, as ``nurture leads export-data`` and ``nurture leads forget``.

    {"lead": EMAIL | ID}

Export answers 200 with everything stored about the person
(`nurture.store.data_rights.export_person`); forget erases the personal
data and answers 200 with what was done. 422 names a bad body, 404 an
unknown lead, and nothing changes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from nurture.handoff.answers import find_lead
from nurture.store.data_rights import export_person, forget_person
from nurture.tracking.schema import Invalid, Problem

ACTIONS = ("export-data", "forget")


def parse(body: Any) -> str:
    """The lead (email or id, as text) in `body`; raises `Invalid`."""
    if not isinstance(body, dict):
        raise Invalid([Problem("$", 'expected an object: {"lead": EMAIL or ID}')])
    problems = [Problem(f"$.{k}", "unknown field") for k in body if k != "lead"]
    lead = body.get("lead")
    if isinstance(lead, bool) or not isinstance(lead, str | int) or not str(lead).strip():
        problems.append(Problem("$.lead", "required: the lead's email address or id"))
    if problems:
        raise Invalid(problems)
    return str(lead)


def act(session: Session, action: str, lead: str, now: datetime) -> dict[str, Any]:
    """Export or forget; `NotFound` for an unknown lead."""
    found = find_lead(session, lead)
    if action == "export-data":
        return export_person(session, found)
    lead_id = found.id
    return {"lead": lead_id, "forgotten": True, **forget_person(session, found, now)}
