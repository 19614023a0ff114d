"""``POST /api/sales/<action>``: sales answer from a CRM or a script, as on the command line.

    accept   {"lead": EMAIL|ID, "by": MEMBER}
    return   {"lead": ..., "by": ..., "reason": TEXT}
    stage    {"lead": ..., "stage": "sql|opportunity|won|lost", "by": ...,
              "amount": N (optional), "reason": TEXT (required for lost)}
    away     {"member": MEMBER, "until": ISO-8601 | null}   (null: back now)

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
from nurture.store.definitions import active_routing
from nurture.tracking.schema import Invalid, Problem

FIELDS: Final = {
    "accept": {"lead": True, "by": True},
    "return": {"lead": True, "by": True, "reason": True},
    "stage": {"lead": True, "stage": True, "by": True, "amount": False, "reason": False},
    "away": {"member": True, "until": False},
}
"""Each action's fields, and whether each is required."""
MAX_TEXT: Final = 500


def parse(action: str, body: Any) -> dict[str, str | None]:
    """The action's fields as text (None: not given); `Invalid` names every bad one."""
    wanted = FIELDS.get(action)
    if wanted is None:
        raise Invalid([Problem("$", f"no action {action!r}; actions: {', '.join(FIELDS)}")])
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
        elif len(str(value)) > MAX_TEXT:
            problems.append(Problem(f"$.{name}", f"longer than {MAX_TEXT} characters"))
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
