"""Suppression per channel and per address.

A lead's own columns (`Lead.suppressed`) stop every channel: a complaint, an
unsubscribe that says "all". A row here closes one channel for one address: a
WeChat 43004 closes WeChat for that openid, not the lead's email; an SMS STOP
or TD reply closes SMS for that number; a hard bounce closes email for that
address. Channel ``all`` closes every channel for the address (what a
forgotten person leaves behind, so a re-import does not mail them again).

Addresses are kept as SHA-256 hashes of the normalised address: an email
trimmed and lower-case, a phone or openid trimmed. Which channels are closed
for a lead is read by the lead's current addresses, so a lead whose number
changed may get SMS again on the new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.models import Suppression

ADDRESS_OF: Final = {"email": "email", "sms": "phone", "wechat": "messaging_id"}
"""The lead column that holds each channel's address."""

STOP_WORDS: Final = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "td", "t", "n", "退订", "取消"}
)
"""SMS replies that unsubscribe the number (as carriers and Chinese SMS providers read them)."""


def address_hash(channel: str, address: str) -> str:
    """The stored hash of `address` on `channel` (emails compared lower-case)."""
    text = address.strip()
    if channel in ("email", "all") and "@" in text:
        text = text.lower()
    return hashlib.sha256(text.encode()).hexdigest()


def addresses(lead: Any) -> dict[str, str]:
    """The lead's address on each channel it has one for (a `Lead` or a selected row)."""
    found = {}
    for channel, column in ADDRESS_OF.items():
        value = getattr(lead, column, None)
        if value:
            found[channel] = str(value)
    return found


def suppress(
    session: Session,
    channel: str,
    address: str,
    reason: str,
    at: datetime,
    lead_id: int | None = None,
) -> bool:
    """Close `channel` (or ``all``) for `address`; False when it already was (the first
    reason is kept)."""
    digest = address_hash(channel, address)
    found = session.scalars(
        select(Suppression).where(
            Suppression.channel == channel, Suppression.address_hash == digest
        )
    ).first()
    if found is not None:
        return False
    session.add(
        Suppression(
            channel=channel, address_hash=digest, lead_id=lead_id, reason=reason, created_at=at
        )
    )
    session.flush()
    return True


def closed_channels(session: Session, leads: Iterable[Any]) -> dict[int, dict[str, str]]:
    """For each lead (by id) with a closed channel: channel → why, read by its addresses.

    An ``all`` row on any of the lead's addresses closes every addressed channel.
    """
    wanted: dict[str, list[tuple[int, str]]] = {}
    for lead in leads:
        for channel, address in addresses(lead).items():
            for kind in (channel, "all"):
                wanted.setdefault(address_hash(kind, address), []).append((lead.id, kind))
    if not wanted:
        return {}
    closed: dict[int, dict[str, str]] = {}
    rows = session.execute(
        select(Suppression.channel, Suppression.address_hash, Suppression.reason).where(
            Suppression.address_hash.in_(list(wanted))
        )
    )
    for channel, digest, reason in rows:
        for lead_id, kind in wanted.get(digest, ()):
            if kind != channel:
                continue
            mine = closed.setdefault(lead_id, {})
            for each in ADDRESS_OF if channel == "all" else (channel,):
                mine.setdefault(each, reason)
    return closed


def close_lead_channel(
    session: Session, lead: Any, channel: str, reason: str, at: datetime
) -> bool:
    """Close `channel` for the lead's current address on it; False when it has none there
    or it was closed already."""
    address = addresses(lead).get(channel)
    if address is None:
        return False
    return suppress(session, channel, address, reason, at, lead.id)


def stops(text: str) -> bool:
    """Whether an SMS reply asks to stop: ``STOP``, ``TD``, ``退订`` and the like."""
    words = text.strip().lower().strip(".!。！ ")
    return words in STOP_WORDS
