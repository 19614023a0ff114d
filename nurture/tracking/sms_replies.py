"""``POST /api/sms/replies``: an SMS reply, relayed by the SMS provider's inbound webhook.

    {"from": "+8613912345678", "text": "TD"}

Authenticated with the API key, as the other ``/api`` requests are. A reply
that asks to stop (``STOP``, ``TD``, ``退订``, ... see
`nurture.store.suppressions.STOP_WORDS`) closes SMS for that number (the
lead's email and WeChat go on) and records ``unsubscribed`` on the lead with
that number, with ``{"channel": "sms"}``; a number no lead has is closed
too, so a lead imported with it later gets no SMS. Any other text changes
nothing. 200 with ``{"stopped": bool, "lead": id | null}``; 422 naming the
bad field; a second STOP records nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.models import Lead
from nurture.store.cleaning import LeadRules, normalize_phone
from nurture.store.scoring import record_event
from nurture.store.suppressions import stops, suppress
from nurture.tracking.records import Effects
from nurture.tracking.schema import Invalid, Problem, text_problems

FIELDS = ("from", "text")


@dataclass(frozen=True, slots=True)
class Reply:
    """A checked SMS reply: the sender's number (normalised) and the text."""

    phone: str
    text: str


def parse(body: Any, rules: LeadRules) -> Reply:
    """The reply in `body`; raises `Invalid` naming every bad field."""
    if not isinstance(body, dict):
        raise Invalid([Problem("$", 'expected an object: {"from": PHONE, "text": TEXT}')])
    problems = [Problem(f"$.{k}", "unknown field") for k in body if k not in FIELDS]
    phone, text = body.get("from"), body.get("text")
    if not isinstance(phone, str) or not phone.strip():
        problems.append(Problem("$.from", "required: the sender's phone number"))
    else:
        try:
            phone = normalize_phone(phone, rules.default_calling_code)
        except ValueError as e:
            problems.append(Problem("$.from", str(e)))
    if not isinstance(text, str):
        problems.append(Problem("$.text", "required: the text of the reply"))
    else:
        problems.extend(text_problems(text, "$.text"))
    if problems:
        raise Invalid(problems)
    assert isinstance(phone, str) and isinstance(text, str)
    return Reply(phone, text)


def act(session: Session, reply: Reply, now: datetime, effects: Effects) -> dict[str, Any]:
    """Close SMS for the number when the reply asks to stop; the response body."""
    lead = session.scalars(select(Lead).where(Lead.phone == reply.phone)).first()
    lead_id = None if lead is None else lead.id
    if not stops(reply.text):
        return {"stopped": False, "lead": lead_id}
    reason = f"SMS reply {reply.text.strip()!r} at {now.isoformat()}"
    if suppress(session, "sms", reply.phone, reason, now, lead_id) and lead is not None:
        data = {"channel": "sms", "via": "sms reply", "text": reply.text.strip()}
        record_event(session, lead.id, "unsubscribed", None, now, data=data)
        effects.wake(session, lead.id, now)
    return {"stopped": True, "lead": lead_id}
