"""``POST /api/sales/<action>``: sales answer from a CRM or a script, as on the command line.

    accept   {"lead": EMAIL|ID, "by": MEMBER}
    return   {"lead": ..., "by": ..., "reason": TEXT}
    stage    {"lead": ..., "stage": "sql|opportunity|won|lost", "by": ...,
              "amount": N (optional), "reason": TEXT (required for lost)}
    away     {"member": MEMBER, "until": ISO-8601 | null}   (null: back now)

and ``POST /api/leads/note`` {"lead": EMAIL|ID, "by": MEMBER, "text": TEXT}: a note on
the lead (`nurture.handoff.notes`), 200 with the note, 422 for an empty or too long text.

The body is checked first (422 naming each bad field); then the answer runs
in one transaction: 200 with what was done, 404 for an unknown lead or
member, 409 when the answer is refused (not the owner, a stage backwards, no
reason), and nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from nurture.handoff.answers import (
    Answered,
    accept,
    find_lead,
    give_back,
    report_stage,
    set_away,
)
from nurture.handoff.notes import MAX_NOTE, add_note
from nurture.store.definitions import active_routing
from nurture.tracking.schema import Invalid, Problem

FIELDS: Final = {
    "accept": {"lead": True, "by": True},
    "return": {"lead": True, "by": True, "reason": True},
    "stage": {"lead": True, "stage": True, "by": True, "amount": False, "reason": False},
    "away": {"member": True, "until": False},
}
"""Each action's fields, and whether each is required."""
NOTE: Final = {"lead": True, "by": True, "text": True}
MAX_TEXT: Final = 500


def parse_note(body: Any) -> dict[str, str | None]:
    """A note's fields; `Invalid` names every bad one (an empty or too long text too)."""
    fields = _parse(NOTE, body, {"text": MAX_NOTE})
    if not (fields["text"] or "").strip():
        raise Invalid([Problem("$.text", "empty: write what you learnt")])
    return fields


def note(session: Session, fields: Mapping[str, str | None], now: datetime) -> Answered:
    """Write the note; `AnswerError` (`NotFound`) for an unknown lead or member."""
    lead = find_lead(session, fields["lead"] or "")
    written = add_note(session, lead, fields["by"] or "", fields["text"] or "", now)
    return Answered(lead.id, f"note {written.id} on lead {lead.id} by {written.author}")


def parse(action: str, body: Any) -> dict[str, str | None]:
    """The action's fields as text (None: not given); `Invalid` names every bad one."""
    wanted = FIELDS.get(action)
    if wanted is None:
        raise Invalid([Problem("$", f"no action {action!r}; actions: {', '.join(FIELDS)}")])
    return _parse(wanted, body)


def _parse(
    wanted: Mapping[str, bool], body: Any, limits: Mapping[str, int] | None = None
) -> dict[str, str | None]:
    if not isinstance(body, Mapping):
        raise Invalid([Problem("$", "send a JSON object")])
    problems = [Problem(f"$.{k}", "unknown field") for k in body if k not in wanted]
    fields: dict[str, str | None] = {}
    for name, required in wanted.items():
        value = body.get(name)
        if value is None:
            if required:
                problems.append(Problem(f"$.{name}", "required"))
            fields[name] = None
        elif name == "amount" and isinstance(value, int | float) and not isinstance(value, bool):
            fields[name] = str(value)
        elif not isinstance(value, str | int) or isinstance(value, bool):
            problems.append(Problem(f"$.{name}", "must be text"))
        elif len(str(value)) > (limit := (limits or {}).get(name, MAX_TEXT)):
            problems.append(Problem(f"$.{name}", f"longer than {limit:,} characters"))
        else:
            fields[name] = str(value)
    if fields.get("until"):
        try:
            datetime.fromisoformat(str(fields["until"]))
        except ValueError:
            problems.append(Problem("$.until", "not an ISO 8601 date or time"))
    if problems:
        raise Invalid(problems)
    return fields


def act(session: Session, action: str, fields: Mapping[str, str | None], now: datetime) -> Answered:
    """Run the answer; `AnswerError` (`NotFound`) when it cannot be taken."""
    text = {k: v or "" for k, v in fields.items()}
    if action == "away":
        until = _moment(fields.get("until"))
        return set_away(session, active_routing(session), text["member"], until, now)
    lead = find_lead(session, text["lead"])
    if action == "accept":
        return accept(session, lead, text["by"], now)
    if action == "return":
        return give_back(session, lead, text["by"], text["reason"], now)
    stage = text["stage"].lower()
    return report_stage(
        session, lead, stage, text["by"], now, amount=fields.get("amount"), reason=text["reason"]
    )


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
