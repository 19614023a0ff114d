"""Mailgun's webhooks (the JSON kind): the signature, replays, and the event.

Each POST is ``{"signature": {"timestamp", "token", "signature"}, "event-data":
{...}}``; the signature is the hex HMAC-SHA256 of timestamp + token under the
webhook signing key (Mailgun, "Securing webhooks"). A timestamp more than
`MAX_AGE` away is refused, and so is a token already used within that time.
Mailgun signs the timestamp and token, not the event: a captured signature
can carry any event data, so the token check is what stops a forged event,
not the idempotency of recording. `Tokens` keeps them per process, which
``nurture serve`` (one process) and the embedded default are; a service run
as several processes behind one URL, or restarted, would take a captured
token once more in each within those minutes. Refusals are 406, which
Mailgun documents as "rejected, do not retry"; a bad signature is 403.

Events: ``delivered``; ``failed`` with ``severity`` ``permanent`` (hard) or
``temporary`` (soft: Mailgun is still retrying, so one message counts as one
soft bounce however many attempts fail: the key is then the message, not the
event); ``complained``; ``opened``; ``clicked``; ``unsubscribed``. Others
(``accepted``, ``stored``, ...) are ignored. Our delivery: the
``nurture_delivery`` user variable (``X-Mailgun-Variables``), else the
message's ``message-id`` header. The key is the event ``id``.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any, Final

from nurture.deliverability.esp.common import (
    DELIVERY_ARG,
    MAX_AGE,
    EspError,
    Report,
    delivery_id,
    fresh,
    message_id,
    obj,
    optional_text,
    text,
    unix_time,
)

SOURCE: Final = "mailgun"
MAX_TOKENS: Final = 100_000
"""Tokens remembered at most; beyond that the oldest go first (they are stale by then)."""


class Tokens:
    """Tokens seen within `MAX_AGE`, so a captured request cannot be posted again."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, datetime] = OrderedDict()
        self._lock = threading.Lock()

    def use(self, token: str, now: datetime) -> bool:
        """True the first time `token` is used; False for a replay."""
        with self._lock:
            while self._seen and (
                len(self._seen) >= MAX_TOKENS or next(iter(self._seen.values())) < now - MAX_AGE
            ):
                self._seen.popitem(last=False)
            if token in self._seen:
                return False
            self._seen[token] = now
            return True

    def forget(self, token: str) -> None:
        """Lets `token` be used again: its request failed, and Mailgun will retry it."""
        with self._lock:
            self._seen.pop(token, None)


def verify(
    signing_key: str, body: Any, tokens: Tokens, now: datetime
) -> tuple[dict[str, Any], str]:
    """The event data of a genuine, fresh, first-seen request, and its token."""
    envelope = obj(body, "$")
    signed = obj(envelope.get("signature"), "$.signature")
    timestamp = text(signed, "timestamp", "$.signature")
    token = text(signed, "token", "$.signature")
    given = text(signed, "signature", "$.signature")
    expected = hmac.new(
        signing_key.encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    # bytes: compare_digest refuses str with non-ASCII characters (a TypeError, not a 403)
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode()):
        raise EspError(403, "$.signature.signature", "the signature does not match")
    fresh(timestamp, "$.signature.timestamp", now, 406)
    if not tokens.use(token, now):
        raise EspError(406, "$.signature.token", "this token was used already: a replay")
    return obj(envelope.get("event-data"), "$.event-data"), token


def parse(event: dict[str, Any]) -> list[Report]:
    """The report in Mailgun's verified `event` data (zero or one)."""
    where = "$.event-data"
    name = text(event, "event", where)
    key = text(event, "id", where)
    at = unix_time(event, "timestamp", where)
    variables = event.get("user-variables")
    found = delivery_id(variables.get(DELIVERY_ARG)) if isinstance(variables, dict) else None
    message = event.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    mid = message_id(headers.get("message-id")) if isinstance(headers, dict) else None
    ours = found, mid
    if name == "delivered":
        return [Report("delivered", at, key, *ours, detail=_status(event))]
    if name == "failed":
        hard = event.get("severity") == "permanent"
        if not hard and mid is not None:
            key = f"temporary:{mid}"
        reason = optional_text(event, "reason")
        detail = f"{reason}: {_status(event)}" if reason else _status(event)
        return [Report("bounced", at, key, *ours, hard=hard, detail=detail)]
    if name == "complained":
        return [Report("complained", at, key, *ours, detail="complained")]
    if name == "opened":
        return [Report("opened", at, key, *ours)]
    if name == "clicked":
        return [Report("clicked", at, key, *ours, url=optional_text(event, "url"))]
    if name == "unsubscribed":
        return [Report("unsubscribed", at, key, *ours, detail="unsubscribed")]
    return []


def _status(event: dict[str, Any]) -> str:
    status = event.get("delivery-status")
    if not isinstance(status, dict):
        return ""
    code = status.get("code")
    words = optional_text(status, "description") or optional_text(status, "message") or ""
    return f"{code} {words}".strip() if code else words
