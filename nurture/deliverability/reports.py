"""Reading what comes back to the bounce domain: DSNs, ARF complaints, auto-replies.

`read_report` takes the bytes of one inbound message and says what it is:

- a delivery status notification (RFC 3464: ``multipart/report;
  report-type=delivery-status``): each per-recipient block's ``Action`` and
  ``Status``; ``failed`` with 5.x.x is a hard bounce, ``failed`` with 4.x.x a
  soft one, ``delivered`` / ``relayed`` / ``expanded`` a delivery. ``delayed``
  is a warning, not a bounce: the sending server is still trying, and sends
  its own report when it gives up (Exim warns every day, so counting the
  warnings would turn a slow server into a hard bounce); alone it is ignored;
- a complaint (RFC 5965: ``multipart/report; report-type=feedback-report``)
  with a ``Feedback-Type`` other than ``not-spam``;
- an auto-reply (RFC 3834 ``Auto-Submitted`` other than ``no``, ``X-Autoreply``,
  ``X-Autorespond``, ``Precedence: auto_reply``, an "Out of Office" or
  "自动回复" subject) with no report in it: ignored, never a bounce;
- anything else without a report: ignored, with the reason.

The original message's Message-ID (from the attached ``message/rfc822`` or
``text/rfc822-headers`` part) is kept, for mapping a report that did not come
to a VERP address. A report that says it is one and is not readable (no
delivery-status part, a block with no Action or Status, a status that is not
one) raises `MalformedReport` naming what is wrong.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from typing import Final

_STATUS = re.compile(r"([245])\.[0-9]{1,3}\.[0-9]{1,3}")
_AUTO_SUBJECT = re.compile(
    r"out of (the )?office|auto(matic)?[ -]?reply|autoreply|auto[ -]?response|on vacation|"
    r"自动回复|休假|不在办公室",
    re.IGNORECASE,
)
_AUTO_PRECEDENCE: Final = frozenset({"auto_reply", "auto-reply"})
_DELIVERED_ACTIONS: Final = frozenset({"delivered", "relayed", "expanded"})
MAX_DETAIL: Final = 500


class MalformedReport(ValueError):
    """A report that cannot be read; the message says what is missing or wrong."""


@dataclass(frozen=True, slots=True)
class Report:
    """What one inbound message said."""

    kind: str
    """``bounced``, ``delivered``, ``complained`` or ``ignored``."""
    key: str
    """The report's own Message-ID, else a hash of its bytes: its idempotency key."""
    hard: bool | None = None
    """For a bounce: 5.x.x (True) or 4.x.x (False)."""
    detail: str = ""
    """Status, recipient and diagnostic text; for ``ignored``, why."""
    original_ids: tuple[str, ...] = field(default=())
    """The Message-ID(s) of the message the report is about, as found in it."""
    original_headers: Message | None = None
    """The attached original's headers, when the report carries them."""

    @property
    def source(self) -> str:
        return "arf" if self.kind == "complained" else "dsn"


def read_report(data: bytes) -> Report:
    """What the message in `data` is; `MalformedReport` when it claims a report it is not."""
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    own_id = header(message, "Message-ID")
    key = own_id or "sha256:" + hashlib.sha256(data).hexdigest()
    report_type = str(message.get_param("report-type", "", header="content-type")).lower()
    if message.get_content_type() == "multipart/report":
        if report_type == "delivery-status":
            return _dsn(message, key)
        if report_type == "feedback-report":
            return _arf(message, key)
    reply = _auto_reply(message)
    if reply is not None:
        return Report("ignored", key, detail=f"an auto-reply ({reply}), not a bounce")
    what = message.get_content_type() + (f"; report-type={report_type}" if report_type else "")
    return Report("ignored", key, detail=f"not a delivery or feedback report ({what})")


def _dsn(message: EmailMessage, key: str) -> Report:
    part = _part(message, "message/delivery-status") or _part(
        message, "message/global-delivery-status"
    )
    if part is None:
        raise MalformedReport("a delivery-status report with no message/delivery-status part")
    blocks = _blocks(part)
    recipients = blocks[1:]
    if not recipients:
        raise MalformedReport("the delivery-status part has no per-recipient fields")
    worst: tuple[str, bool | None, str] | None = None
    for block in recipients:
        action = header(block, "Action").lower()
        status = header(block, "Status")
        if not action or not status:
            raise MalformedReport("a per-recipient block lacks its Action or Status field")
        match = _STATUS.match(status)
        if match is None:
            raise MalformedReport(f"Status {status!r} is not a status code such as 5.1.1")
        who = _address(header(block, "Final-Recipient") or header(block, "Original-Recipient"))
        diagnostic = header(block, "Diagnostic-Code")
        detail = " ".join(p for p in (status, who, diagnostic) if p)[:MAX_DETAIL]
        if action == "failed":
            found = ("bounced", match.group(1) == "5", detail)
        elif action == "delayed":
            found = ("delayed", None, detail)
        elif action in _DELIVERED_ACTIONS:
            found = ("delivered", None, detail)
        else:
            raise MalformedReport(f"Action {action!r} is not failed, delayed or delivered")
        if worst is None or _rank(found) > _rank(worst):
            worst = found
    assert worst is not None
    kind, hard, detail = worst
    headers = _original(message)
    if kind == "delayed":
        why = f"a delay warning ({detail}): the sending server still tries, not a bounce"
        return Report("ignored", key, detail=why, original_ids=_ids(headers))
    return Report(kind, key, hard, detail, _ids(headers), headers)


def _rank(found: tuple[str, bool | None, str]) -> int:
    """A hard bounce outweighs a soft one, which outweighs a delivery, then a delay."""
    kind, hard, _ = found
    if kind == "bounced":
        return 3 if hard else 2
    return 1 if kind == "delivered" else 0


def _arf(message: EmailMessage, key: str) -> Report:
    part = _part(message, "message/feedback-report")
    if part is None:
        raise MalformedReport("a feedback report with no message/feedback-report part")
    blocks = _blocks(part)
    fields = blocks[0] if blocks else None
    kind = "" if fields is None else header(fields, "Feedback-Type").lower()
    if not kind:
        raise MalformedReport("the feedback-report part has no Feedback-Type field")
    headers = _original(message)
    if kind == "not-spam":
        return Report(
            "ignored", key, detail="a not-spam feedback report", original_ids=_ids(headers)
        )
    assert fields is not None
    who = _address(header(fields, "Original-Rcpt-To"))
    agent = header(fields, "User-Agent")
    detail = " ".join(p for p in (f"Feedback-Type: {kind}", who, agent) if p)[:MAX_DETAIL]
    return Report("complained", key, None, detail, _ids(headers), headers)


def _part(message: EmailMessage, content_type: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def _blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status or feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = payload if isinstance(payload, str) else ""
    parser = HeaderParser()
    chunks = re.split(r"\r?\n\s*\r?\n", text.strip())
    return [parser.parsestr(c) for c in chunks if c.strip()]


def _original(message: EmailMessage) -> Message | None:
    """The headers of the message a report is about, from its third part."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if kind in ("text/rfc822-headers", "message/global-headers"):
            text = part.get_payload(decode=True)
            raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else ""
            return HeaderParser().parsestr(raw)
    return None


def _ids(headers: Message | None) -> tuple[str, ...]:
    if headers is None:
        return ()
    found = header(headers, "Message-ID")
    return (found,) if found else ()


def header(message: Message, name: str) -> str:
    """The header's value, stripped; "" when absent. A value the email package cannot
    parse (``Message-ID: <a@``: it raises IndexError, not a defect) is read raw, since a
    DSN from a careless server is still a DSN; a NUL or a lone surrogate in it is replaced,
    so that it can be stored."""
    try:
        value = message.get(name)
    except Exception:  # the parser's own errors, which it does not wrap
        raw = [v for k, v in message.raw_items() if k.lower() == name.lower()]
        value = raw[0] if raw else None
    text = str(value or "").replace("\x00", " ")  # storable: PostgreSQL refuses NUL
    if not text.isascii():  # and lone surrogates (undecodable bytes, read raw)
        text = text.encode("utf-8", "replace").decode("utf-8")
    return " ".join(text.split())


def _address(field_value: str) -> str:
    """``rfc822; ada@corp.com`` as ``ada@corp.com``."""
    return field_value.partition(";")[2].strip() if ";" in field_value else field_value.strip()


def _auto_reply(message: EmailMessage) -> str | None:
    """Why the message is an auto-reply, or None."""
    submitted = header(message, "Auto-Submitted").lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted}"
    for name in ("X-Autoreply", "X-Autorespond"):
        if name in message:  # case-insensitive, and no parsing of the value
            return f"{name} header"
    precedence = header(message, "Precedence").lower()
    if precedence in _AUTO_PRECEDENCE:
        return f"Precedence: {precedence}"
    subject = header(message, "Subject")
    if _AUTO_SUBJECT.search(subject):
        return f"subject {subject.strip()[:80]!r}"
    return None
