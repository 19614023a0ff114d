"""Consent per channel: given or withdrawn, where it came from and when.

A lead record (a CSV row, a JSON line, a ``POST /api/leads`` item) gives it
as ``consent_email``, ``consent_sms``, ``consent_wechat`` (yes / no, true /
false, 1 / 0, granted / withdrawn, 是 / 否; blank: not given) and
optionally ``consent_source`` (a form's name, say; else ``import`` or
``api``). The latest answer per channel is kept, with its time.

With ``NURTURE_REQUIRE_CONSENT=email,sms,...`` a lead without a given
consent for a listed channel gets nothing on it: the runtime closes the
channel for that lead (`closed_for_consent`), so a touch there is recorded
as ``suppressed`` with the reason and the campaign goes on.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.models import Consent

FIELDS: Final = {"consent_email": "email", "consent_sms": "sms", "consent_wechat": "wechat"}
"""Record fields that carry consent, and their channel."""
SOURCE_FIELD: Final = "consent_source"

YES: Final = frozenset({"yes", "y", "true", "1", "granted", "given", "opt-in", "optin", "是"})
NO: Final = frozenset({"no", "n", "false", "0", "withdrawn", "denied", "opt-out", "optout", "否"})


def parse_consent(value: Any) -> bool | None:
    """A consent value: True (given), False (withdrawn or refused), None (not given);
    raises `ValueError` for a value that is not one."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | str):
        text = str(value).strip().lower()
        if not text:
            return None
        if text in YES:
            return True
        if text in NO:
            return False
    shown = repr(value) if isinstance(value, str) else str(value)
    raise ValueError(f"{shown} is not a consent: yes or no (true/false, 1/0, granted/withdrawn)")


def parse_source(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value.strip()) > 200:
        raise ValueError("should be text of at most 200 characters (where the consent came from)")
    return value.strip()


def record_consents(
    session: Session, lead_id: int, consent: Mapping[str, bool], source: str, at: datetime
) -> None:
    """Keep each channel's answer for the lead (the latest wins)."""
    for channel, granted in consent.items():
        row = session.get(Consent, (lead_id, channel))
        if row is None:
            session.add(
                Consent(lead_id=lead_id, channel=channel, granted=granted, source=source, at=at)
            )
        elif row.at <= at:
            row.granted, row.source, row.at = granted, source, at
    session.flush()


def closed_for_consent(
    session: Session, lead_ids: Iterable[int], required: Collection[str]
) -> dict[int, dict[str, str]]:
    """For each lead: the required channels it has not consented to, and why."""
    ids = list(lead_ids)
    if not required or not ids:
        return {}
    given: dict[tuple[int, str], Consent] = {
        (c.lead_id, c.channel): c
        for c in session.scalars(select(Consent).where(Consent.lead_id.in_(ids)))
    }
    closed: dict[int, dict[str, str]] = {}
    for lead_id in ids:
        for channel in required:
            row = given.get((lead_id, channel))
            if row is not None and row.granted:
                continue
            why = (
                f"no consent for {channel} (NURTURE_REQUIRE_CONSENT)"
                if row is None
                else f"consent for {channel} withdrawn ({row.source}, {row.at.isoformat()})"
            )
            closed.setdefault(lead_id, {})[channel] = why
    return closed


def record_imported(session: Session, leads: Iterable[Any], at: datetime) -> None:
    """Record the consent of stored import records (`CleanLead`s), finding each lead by its
    identity: the import stores new leads in bulk, without handing back their ids."""
    from nurture.store.leads import find_leads  # leads imports this module

    for clean in leads:
        if clean.consent:
            for lead in find_leads(session, **clean.identity())[:1]:
                record_consents(
                    session, lead.id, clean.consent, clean.consent_source or "import", at
                )
