"""SendGrid's Event Webhook: the signature and the events.

Signed webhooks carry ``X-Twilio-Email-Event-Webhook-Signature`` (base64 of an
ECDSA P-256 / SHA-256 DER signature) over the ``-Timestamp`` header followed
by the raw body; the key is the public key SendGrid shows when signing is
turned on (base64 DER, or PEM). A timestamp older than `MAX_AGE` is refused.

The body is a list of events. Read: ``delivered``; ``bounce`` (``type``
``bounce`` is hard, ``blocked`` soft); ``dropped`` (SendGrid did not send:
"Bounced Address" is hard, "Spam Reporting Address" a complaint,
"Unsubscribed Address" an unsubscribe; "Invalid", an address that cannot be one,
hard; other reasons, such as "Spam Content" or "Recipient List over Package
Quota", are about our message or account, not the address, and are ignored:
counted as soft bounces, three campaigns caught by the spam checker would
close email to every lead they went to);
``spamreport``; ``open``; ``click``; ``unsubscribe`` and
``group_unsubscribe``. ``processed``, ``deferred`` (SendGrid is still trying)
and ``group_resubscribe`` are ignored, as are events SendGrid may add later.
Our delivery: the ``nurture_delivery`` custom argument (echoed as a field of
the event), else ``smtp-id``, the message's Message-ID. The key is ``sg_event_id``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from nurture.deliverability.esp.common import (
    DELIVERY_ARG,
    EspError,
    Report,
    delivery_id,
    fresh,
    load_json,
    message_id,
    obj,
    optional_text,
    text,
    unix_time,
)

SOURCE: Final = "sendgrid"
SIGNATURE: Final = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP: Final = "X-Twilio-Email-Event-Webhook-Timestamp"
IGNORED: Final = ("processed", "deferred", "group_resubscribe")


def public_key(configured: str) -> ec.EllipticCurvePublicKey:
    """The verification key from its base64 DER (as SendGrid shows it) or PEM text."""
    raw = configured.strip()
    try:
        if raw.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(raw.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(raw, validate=True))
    except (ValueError, binascii.Error, TypeError) as e:
        raise ValueError(f"not a public key in base64 DER or PEM ({e})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not an ECDSA P-256 public key")
    return key


def verify(
    key: ec.EllipticCurvePublicKey,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    now: datetime,
) -> None:
    """Raises `EspError` (401/403) unless the headers sign `body` with `key`, recently."""
    if not signature or not timestamp:
        raise EspError(401, SIGNATURE, f"the request is not signed: no {SIGNATURE} or {TIMESTAMP}")
    try:
        der = base64.b64decode(signature.strip(), validate=True)
        key.verify(der, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise EspError(403, SIGNATURE, "the signature does not match the body") from None
    fresh(timestamp, TIMESTAMP, now, 403)


def parse(body: bytes) -> list[Report]:
    """The reports in a verified Event Webhook body (a list of events)."""
    events = load_json(body)
    if not isinstance(events, list):
        raise EspError(400, "$", "the Event Webhook posts a list of events")
    reports = []
    for i, item in enumerate(events):
        report = _event(obj(item, f"$[{i}]"), f"$[{i}]")
        if report is not None:
            reports.append(report)
    return reports


def _event(event: dict[str, Any], where: str) -> Report | None:
    name = text(event, "event", where)
    if name in IGNORED:
        return None
    key = text(event, "sg_event_id", where)
    at = unix_time(event, "timestamp", where)
    ours = delivery_id(event.get(DELIVERY_ARG)), message_id(event.get("smtp-id"))
    reason = optional_text(event, "reason") or ""
    status = optional_text(event, "status")
    detail = f"{status} {reason}".strip() if status else reason
    if name == "delivered":
        return Report("delivered", at, key, *ours, detail=optional_text(event, "response") or "")
    if name == "bounce":
        hard = event.get("type", "bounce") != "blocked"
        return Report("bounced", at, key, *ours, hard=hard, detail=detail)
    if name == "dropped":
        said = reason.lower()
        if "bounced address" in said or said == "invalid":
            return Report("bounced", at, key, *ours, hard=True, detail=f"dropped: {reason}")
        if "spam reporting" in said:
            return Report("complained", at, key, *ours, detail=f"dropped: {reason}")
        if "unsubscribed" in said:
            return Report("unsubscribed", at, key, *ours, detail=f"dropped: {reason}")
        return None  # our content or account (Spam Content, over quota): not the address's
    if name == "spamreport":
        return Report("complained", at, key, *ours, detail="spamreport")
    if name == "open":
        return Report("opened", at, key, *ours)
    if name == "click":
        return Report("clicked", at, key, *ours, url=optional_text(event, "url"))
    if name in ("unsubscribe", "group_unsubscribe"):
        group = event.get("asm_group_id")
        detail = name if group is None else f"{name} (group {group})"
        return Report("unsubscribed", at, key, *ours, detail=detail)
    return None  # an event SendGrid added since: not ours to refuse
