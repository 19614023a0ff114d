"""Amazon SES events, as SNS delivers them (the ``Message`` of a verified Notification).

Two shapes, both read: identity notifications (``notificationType``: Bounce,
Complaint, Delivery) and event publishing through a configuration set
(``eventType``: also Open, Click, Subscription, and Send, Reject,
DeliveryDelay, Rendering Failure, which say nothing about the reader and are
ignored).

Bounces: ``Permanent`` is hard; ``Transient`` and ``Undetermined`` are soft
(SES sends them once, after its own retries). A complaint whose
``complaintFeedbackType`` is ``not-spam`` is no complaint and is ignored.

Our delivery: the ``nurture_delivery`` message tag (``X-SES-MESSAGE-TAGS:
nurture_delivery=42``, echoed in ``mail.tags``) or our ``X-Nurture-Delivery``
header in ``mail.headers``, else our Message-ID from
``mail.headers`` (when the identity includes headers) or
``mail.commonHeaders.messageId``. The key of each report is the SNS
MessageId (SNS retries keep it), with the recipient's index when one
notification names several.
"""

from __future__ import annotations

from typing import Any, Final

from nurture.deliverability.esp.common import (
    DELIVERY_ARG,
    EspError,
    Report,
    delivery_id,
    iso_time,
    load_json,
    message_id,
    obj,
    optional_text,
)

SOURCE: Final = "ses"
IGNORED: Final = ("Send", "Reject", "DeliveryDelay", "Rendering Failure", "AmazonSnsSubscription")


def parse(message: str, sns_id: str) -> list[Report]:
    """The reports in the SES event `message` (the SNS ``Message`` text)."""
    event = obj(load_json(message.encode("utf-8"), "$.Message"), "$.Message")
    where = "$.Message"
    kind = event.get("eventType") or event.get("notificationType")
    if not isinstance(kind, str):
        raise EspError(400, where, "an SES event has an eventType or a notificationType")
    if kind in IGNORED:
        return []
    mail = obj(event.get("mail"), f"{where}.mail")
    ours = _ours(mail)
    if kind == "Bounce":
        bounce = obj(event.get("bounce"), f"{where}.bounce")
        hard = bounce.get("bounceType") == "Permanent"
        at = iso_time(bounce, "timestamp", f"{where}.bounce")
        people = _list(bounce, "bouncedRecipients", f"{where}.bounce")
        kind_of = str(bounce.get("bounceType")), str(bounce.get("bounceSubType"))
        return [
            Report("bounced", at, _key(sns_id, i, len(people)), *ours, hard, _detail(kind_of, who))
            for i, who in enumerate(people)
        ]
    if kind == "Complaint":
        complaint = obj(event.get("complaint"), f"{where}.complaint")
        if complaint.get("complaintFeedbackType") == "not-spam":
            return []
        at = iso_time(complaint, "timestamp", f"{where}.complaint")
        people = _list(complaint, "complainedRecipients", f"{where}.complaint")
        detail = optional_text(complaint, "complaintFeedbackType") or "complaint"
        return [
            Report("complained", at, _key(sns_id, i, len(people)), *ours, detail=detail)
            for i in range(len(people))
        ]
    if kind == "Delivery":
        delivery = obj(event.get("delivery"), f"{where}.delivery")
        at = iso_time(delivery, "timestamp", f"{where}.delivery")
        detail = optional_text(delivery, "smtpResponse") or ""
        return [Report("delivered", at, sns_id, *ours, detail=detail)]
    if kind == "Open":
        opened = obj(event.get("open"), f"{where}.open")
        return [Report("opened", iso_time(opened, "timestamp", f"{where}.open"), sns_id, *ours)]
    if kind == "Click":
        click = obj(event.get("click"), f"{where}.click")
        at = iso_time(click, "timestamp", f"{where}.click")
        return [Report("clicked", at, sns_id, *ours, url=optional_text(click, "link"))]
    if kind == "Subscription":
        change = obj(event.get("subscription"), f"{where}.subscription")
        prefs = change.get("newTopicPreferences")
        if not (isinstance(prefs, dict) and prefs.get("unsubscribeAll") is True):
            return []
        at = iso_time(change, "timestamp", f"{where}.subscription")
        return [Report("unsubscribed", at, sns_id, *ours, detail="unsubscribeAll")]
    return []  # an event type SES added since: not ours to refuse


def _ours(mail: dict[str, Any]) -> tuple[int | None, str | None]:
    """Our delivery id (the message tag) and Message-ID, as far as SES echoed them."""
    tags = mail.get("tags")
    found = delivery_id(tags.get(DELIVERY_ARG)) if isinstance(tags, dict) else None
    mid = None
    headers = mail.get("headers")
    if isinstance(headers, list):
        for header in headers:
            name = str(header.get("name", "")).lower() if isinstance(header, dict) else ""
            if name == "message-id":
                mid = message_id(header.get("value"))
            elif name == "x-nurture-delivery" and found is None:
                found = delivery_id(header.get("value"))
    common = mail.get("commonHeaders")
    if mid is None and isinstance(common, dict):
        mid = message_id(common.get("messageId"))
    return found, mid


def _list(data: dict[str, Any], name: str, where: str) -> list[Any]:
    value = data.get(name)
    if not isinstance(value, list) or not value:
        raise EspError(400, f"{where}.{name}", "expected a list of recipients")
    return value


def _key(sns_id: str, index: int, count: int) -> str:
    return sns_id if count == 1 else f"{sns_id}:{index}"


def _detail(kind: tuple[str, str], who: Any) -> str:
    words = "/".join(kind)
    if isinstance(who, dict):
        said = who.get("diagnosticCode") or who.get("status")
        if isinstance(said, str) and said:
            return f"{words}: {said}"
    return words
