"""Postmark's webhooks: HTTP basic authentication and the records.

Postmark does not sign webhooks; it documents putting basic-auth credentials
in the webhook URL (``https://user:password@t.example.com/esp/postmark``), so
a request without them, or with others, is 401.

Records (``RecordType``): ``Bounce`` by ``Type`` (or ``TypeCode``):
HardBounce, BadEmailAddress and ManuallyDeactivated are hard; Unsubscribe is an
unsubscribe; SpamComplaint and SpamNotification a complaint; AutoResponder,
Subscribe, AddressChange, ChallengeVerification, OpenRelayTest and the like
are not bounces and are ignored (an out-of-office reply says nothing about
the address); any other type (SoftBounce, Transient, DnsError, Blocked, ...)
is soft. ``SpamComplaint``, ``Delivery``, ``Open``, ``Click``, and
``SubscriptionChange`` that suppresses sending by ManualSuppression (the
reader unsubscribed at Postmark; hard bounces and complaints arrive as their
own records). Our delivery: ``Metadata.nurture_delivery`` (the
``X-PM-Metadata-nurture_delivery`` header), as Postmark's ``MessageID`` is its
own. The key is the bounce ``ID``, or the record type, MessageID and time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any, Final

from nurture.deliverability.esp.common import (
    DELIVERY_ARG,
    EspError,
    Report,
    delivery_id,
    iso_time,
    load_json,
    obj,
    optional_text,
    text,
)

SOURCE: Final = "postmark"
HARD: Final = {"HardBounce": 1, "BadEmailAddress": 100000, "ManuallyDeactivated": 100002}
COMPLAINT: Final = {"SpamComplaint": 100001, "SpamNotification": 512}
UNSUBSCRIBE: Final = {"Unsubscribe": 16}
NOT_BOUNCES: Final = {
    "Subscribe": 32,
    "AutoResponder": 64,
    "AddressChange": 128,
    "OpenRelayTest": 1024,
    "VirusNotification": 8192,
    "ChallengeVerification": 16384,
    "Unconfirmed": 100003,
    "InboundError": 100008,
    "TemplateRenderingFailed": 100010,
}
_NAMES: Final = {
    code: name
    for table in (HARD, COMPLAINT, UNSUBSCRIBE, NOT_BOUNCES)
    for name, code in table.items()
}
CHALLENGE: Final = 'Basic realm="nurture ESP webhooks", charset="UTF-8"'


def authenticate(configured: str, header: str | None) -> None:
    """Raises `EspError` (401) unless `header` is basic auth with the ``user:password``."""
    scheme, _, encoded = (header or "").partition(" ")
    given = b""
    if scheme.lower() == "basic":
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            given = b""
    if not given or not hmac.compare_digest(given, configured.encode("utf-8")):
        why = "wrong credentials" if given else "no credentials"
        raise EspError(
            401,
            "Authorization",
            f"{why}: put NURTURE_POSTMARK_WEBHOOK_AUTH in the webhook URL (https://user:pass@...)",
            **{"WWW-Authenticate": CHALLENGE},
        )


def parse(body: bytes) -> list[Report]:
    """The reports in one Postmark webhook record (zero or one)."""
    record = obj(load_json(body), "$")
    kind = text(record, "RecordType", "$")
    metadata = record.get("Metadata")
    ours = delivery_id(metadata.get(DELIVERY_ARG)) if isinstance(metadata, dict) else None
    message = optional_text(record, "MessageID") or "-"
    if kind in ("Bounce", "SpamComplaint"):
        return _bounce(record, ours)
    if kind == "Delivery":
        at = iso_time(record, "DeliveredAt", "$")
        key = f"Delivery:{message}:{record['DeliveredAt']}"
        return [Report("delivered", at, key, ours, detail=optional_text(record, "Details") or "")]
    if kind in ("Open", "Click"):
        at = iso_time(record, "ReceivedAt", "$")
        if kind == "Open":
            return [Report("opened", at, f"Open:{message}:{record['ReceivedAt']}", ours)]
        url = optional_text(record, "OriginalLink")
        key = f"Click:{message}:{record['ReceivedAt']}:{url or ''}"
        return [Report("clicked", at, key, ours, url=url)]
    if kind == "SubscriptionChange":
        manual = record.get("SuppressionReason") == "ManualSuppression"
        if record.get("SuppressSending") is not True or not manual:
            return []
        at = iso_time(record, "ChangedAt", "$")
        key = f"SubscriptionChange:{message}:{record['ChangedAt']}"
        return [Report("unsubscribed", at, key, ours, detail="ManualSuppression")]
    return []  # a record type Postmark added since (e.g. inbound): not ours to refuse


def _bounce(record: dict[str, Any], ours: int | None) -> list[Report]:
    code = record.get("TypeCode")
    name = optional_text(record, "Type") or _NAMES.get(code if isinstance(code, int) else -1, "")
    at = iso_time(record, "BouncedAt", "$")
    ident = record.get("ID")
    if isinstance(ident, bool) or not isinstance(ident, int | str):
        raise EspError(400, "$.ID", "a bounce record has an ID")
    key = f"Bounce:{ident}"
    said = optional_text(record, "Details") or optional_text(record, "Description") or ""
    detail = f"{name}: {said}" if said else name
    if name in NOT_BOUNCES:
        return []
    if name in COMPLAINT or record["RecordType"] == "SpamComplaint":
        return [Report("complained", at, key, ours, detail=detail)]
    if name in UNSUBSCRIBE:
        return [Report("unsubscribed", at, key, ours, detail=detail)]
    return [Report("bounced", at, key, ours, hard=name in HARD, detail=detail)]
