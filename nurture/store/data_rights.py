"""Data-subject rights (PIPL, GDPR): everything stored about a person, and erasing it.

`export_person` reads the lead's row and every row of every table that points
at it (found from the models' foreign keys, so a table added later is
exported too), as JSON-ready values.

`forget_person` erases the personal data and keeps anonymous counts:

- the lead row stays, without email, phone, openid, names, company, title,
  owner, source, attributes or time zone; stage and scores stay, so funnels
  and campaign reports still count it; it is unsubscribed from everything;
- its tags, notes, consents and merge records (copies of merged profiles)
  are deleted; its events keep type and time, not their data; its
  deliveries and notices keep channel and status, not the error text
  (which may name the address); a return reason written by sales is cleared;
- each of its addresses (also those of leads merged into it) is kept
  *hashed* on the suppression list on ``all`` channels, so a re-import of
  the same address gets nothing on any channel.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import CursorResult, Table, delete, select, update
from sqlalchemy.orm import Session

from nurture.models import (
    Base,
    Consent,
    Delivery,
    Event,
    Lead,
    LeadMerge,
    LeadNote,
    MqlRecord,
    Notice,
    Suppression,
    Tag,
)
from nurture.store.suppressions import addresses, suppress

PERSONAL: Final = (
    "email",
    "phone",
    "messaging_id",
    "first_name",
    "last_name",
    "company",
    "title",
    "owner",
    "source",
    "account_id",
)
"""Lead columns erased by `forget_person`."""


def export_person(session: Session, lead: Lead) -> dict[str, Any]:
    """Everything stored about the lead: its row, and the rows of each table that refers
    to it, by table name."""
    lead_table = Base.metadata.tables["leads"]
    row = session.execute(select(lead_table).where(lead_table.c.id == lead.id)).one()
    data: dict[str, Any] = {"lead": _row(lead_table, row)}
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if any(fk.column.table is lead_table for fk in column.foreign_keys):
                rows = session.execute(select(table).where(column == lead.id)).all()
                data.setdefault(table.name, []).extend(_row(table, r) for r in rows)
    return data


def forget_person(session: Session, lead: Lead, now: datetime) -> dict[str, int]:
    """Erase the lead's personal data (see the module); what was done, in counts."""
    kept = 0
    merges = session.scalars(select(LeadMerge).where(LeadMerge.into_id == lead.id))
    known = set(addresses(lead).values())
    for merge in merges:  # the addresses of leads merged into this one were the person's too
        known |= set(addresses(_Profile(merge.merged or {})).values())
    for address in sorted(known):
        kept += suppress(session, "all", address, f"forgotten at {now.isoformat()}", now)
    removed = sum(
        _deleted(session, delete(model).where(model.lead_id == lead.id))
        for model in (Tag, LeadNote, Consent)
    )
    removed += _deleted(session, delete(LeadMerge).where(LeadMerge.into_id == lead.id))
    session.execute(update(Event).where(Event.lead_id == lead.id).values(data={}))
    session.execute(update(Delivery).where(Delivery.lead_id == lead.id).values(error=None))
    session.execute(update(Notice).where(Notice.lead_id == lead.id).values(error=None))
    session.execute(
        update(MqlRecord).where(MqlRecord.lead_id == lead.id).values(return_reason=None)
    )
    session.execute(update(Suppression).where(Suppression.lead_id == lead.id).values(lead_id=None))
    for column in PERSONAL:
        setattr(lead, column, None)
    lead.attributes = {}
    lead.time_zone = "UTC"
    lead.unsubscribed_at = lead.unsubscribed_at or now
    lead.suppressed_reason = f"forgotten at {now.isoformat()}"
    lead.updated_at = now
    session.flush()
    return {"addresses kept hashed": kept, "rows deleted": removed}


class _Profile:
    """A merge record's snapshot, read as `addresses` reads a lead."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.email = values.get("email")
        self.phone = values.get("phone")
        self.messaging_id = values.get("messaging_id")


def _deleted(session: Session, statement: Any) -> int:
    result = session.execute(statement)
    return int(result.rowcount or 0) if isinstance(result, CursorResult) else 0


def _row(table: Table, row: Any) -> dict[str, Any]:
    return {c.name: _json(getattr(row, c.name)) for c in table.columns}


def _json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value
