"""Sales' accept / return links: ``GET /s/<token>`` shows the lead, a POST answers.

The token names one assignment (`TokenSigner.answer_token`), so the link is
bound to that owner and that MQL and expires. A GET never changes anything
(mail scanners follow links); accepting is a POST from the page, and
returning is a form whose reason is required (the routing's ``return
reasons`` offered, or free text). A link whose MQL went to somebody else, was
answered already, or that is forged or expired gets a page that says so, a
4xx, and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Final
from urllib.parse import parse_qs

from sqlalchemy.orm import Session

from nurture.handoff.answers import AnswerError, accept, give_back
from nurture.models import Assignment, Lead, MqlRecord
from nurture.store.definitions import active_routing
from nurture.tracking import pages

MAX_REASON: Final = 500
"""Characters of free text a return reason may have."""


@dataclass(frozen=True, slots=True)
class Held:
    """An assignment whose link still answers: its owner holds the open MQL."""

    assignment: Assignment
    record: MqlRecord
    lead: Lead


class Refused(Exception):
    """Raised when a link cannot answer: its status and the page's words."""

    def __init__(self, status: int, title: str, words: str) -> None:
        super().__init__(words)
        self.status, self.title, self.words = status, title, words


EXPIRED: Final = Refused(
    404,
    "Link not valid",
    "This link is damaged or has expired. Answer with `nurture sales` or ask for a new one.",
)


def held(session: Session, assignment_id: int) -> Held:
    """The assignment, if its owner still holds the MQL unanswered; else `Refused`."""
    assignment = session.get(Assignment, assignment_id)
    record = None if assignment is None else session.get(MqlRecord, assignment.mql_id)
    lead = None if assignment is None else session.get(Lead, assignment.lead_id)
    if assignment is None or record is None or lead is None:
        raise Refused(404, "Lead not found", "This lead no longer exists.")
    if record.returned_at is not None:
        raise Refused(409, "Already returned", "This lead was returned to nurture already.")
    if record.owner != assignment.owner or lead.owner != assignment.owner:
        who = escape(record.owner or "nobody")
        raise Refused(409, "Reassigned", f"This lead has been handed to {who} since.")
    return Held(assignment, record, lead)


def page(session: Session, assignment_id: int, problem: str = "") -> str:
    """The lead and the two answers, or what was answered already."""
    found = held(session, assignment_id)
    reasons = [str(r) for r in (active_routing(session) or {}).get("return_reasons") or ()]
    return lead_page(found, reasons, problem)


def answer(session: Session, assignment_id: int, body: bytes, now: datetime) -> str:
    """Accept, or return with the reason the form gives; the page that says what was done."""
    found = held(session, assignment_id)
    form = parse_qs(body.decode("utf-8", "replace"))
    action = (form.get("action") or [""])[0]
    owner = found.assignment.owner or ""
    try:
        if action == "accept":
            done = accept(session, found.lead, owner, now)
        elif action == "return":
            reason = _reason(form)
            done = give_back(session, found.lead, owner, reason, now)
        else:
            raise Refused(400, "Choose an answer", "Accept the lead, or return it with a reason.")
    except AnswerError as e:
        raise Refused(400, "Not done", escape(str(e))) from e
    return pages.page("Done", f"<h1>Done</h1>\n<p>{escape(done.said)}.</p>")


def _reason(form: dict[str, list[str]]) -> str:
    chosen = (form.get("reason") or [""])[0].strip()
    other = (form.get("other") or [""])[0].strip()
    reason = other if chosen in ("", "other") else chosen
    if not reason:
        raise Refused(400, "A reason is needed", "Returning a lead needs a reason: choose one.")
    if len(reason) > MAX_REASON:
        raise Refused(400, "Reason too long", f"Keep the reason under {MAX_REASON} characters.")
    return reason


def lead_page(found: Held, reasons: list[str], problem: str) -> str:
    lead, record = found.lead, found.record
    name = " ".join(p for p in (lead.first_name, lead.last_name) if p) or lead.email or "a lead"
    rows = [
        ("Company", lead.company),
        ("Title", lead.title),
        ("Email", lead.email),
        ("Phone", lead.phone),
        ("Why an MQL", record.rule),
        ("Why you", found.assignment.reason),
        (
            "Answer by",
            record.sla_due_at.strftime("%Y-%m-%d %H:%M UTC") if record.sla_due_at else "",
        ),
    ]
    table = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows if v)
    if record.accepted_at is not None:
        answers = "<p>You accepted this lead. 已接受。</p>"
    else:
        answers = (
            '<form method="post"><input type="hidden" name="action" value="accept">'
            '<button type="submit">Accept · 接受</button></form>\n'
        )
    options = "".join(f'<option value="{escape(r)}">{escape(r)}</option>' for r in reasons)
    answers += (
        '<h2 id="return">Return to nurture · 退回</h2>\n'
        '<form method="post"><input type="hidden" name="action" value="return">\n'
        f'<p><label>Reason <select name="reason"><option value="other">other (say why)</option>'
        f"{options}</select></label></p>\n"
        '<p><label>Why <input name="other" maxlength="500"></label></p>\n'
        '<button type="submit">Return · 退回</button></form>'
    )
    warning = f'<p class="problem"><strong>{escape(problem)}</strong></p>\n' if problem else ""
    return pages.page(
        f"MQL: {name}",
        f"<h1>{escape(name)}</h1>\n{warning}<table>{table}</table>\n{answers}",
    )
