"""The MIME message of an email: text and HTML parts, Message-ID, one-click unsubscribe.

Two builders that agree on what a message holds:

- `email_bytes()` writes the wire form directly, 7-bit clean with CRLF line
  ends: headers encoded by RFC 2047 where they are not ASCII and folded by
  RFC 5322, bodies in 7bit, quoted-printable or base64, whichever is
  shortest. The SMTP channel and the outbox send and write these bytes, so
  what is sent and what is written are the same. It is some twenty times
  cheaper than generating from an `EmailMessage`, which parses every header
  it is given into a tree and folds it again on the way out.
- `build_email()` builds an `EmailMessage` with the standard email policy:
  the reference. `email_bytes()` falls back to it for what it leaves to the
  standard library (an address that is not ASCII, a header line that cannot
  be folded under 998 characters, an odd header name), and the tests check
  that both say the same thing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import default
from email.utils import format_datetime, formataddr, getaddresses, parseaddr
from functools import lru_cache

from channels.base import OutboundMessage
from channels.errors import PermanentChannelError

_MESSAGE_ID = re.compile(r"<[^<>@\s]+@[^<>@\s]+>")
_OWN_HEADERS = {"to", "subject", "message-id", "mime-version"}
_ADDRESS_HEADERS = {"from", "reply-to", "sender", "cc"}
_NOT_SENT = {"bcc", "resent-bcc"}
"""Headers a relay strips (as aiosmtplib's `send_message` did): recipients come from `to`."""
_HEADER_NAME = re.compile(r"[!-9;-~]+")
_BARE_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")
_FOLD_AT = 78
"""RFC 5322: lines should be at most 78 characters; folded beyond that where possible."""
_LINE_LIMIT = 998
"""RFC 5322: lines must be at most 998 characters."""
_CRLF = "\r\n"


class _HeaderClasses(HeaderRegistry):
    """The standard header classes, made once per name; the stock registry makes one per header."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        if key not in self._made:
            self._made[key] = super().__getitem__(key)
        return self._made[key]


POLICY = default.clone(header_factory=_HeaderClasses(), cte_type="7bit")
"""`email.policy.default`, 7-bit clean like `email_bytes()`, and about twice as fast."""
SMTP_POLICY = POLICY.clone(linesep=_CRLF)
"""`POLICY` with CRLF line ends, for the wire and for .eml files."""


@dataclass(frozen=True, slots=True)
class Sender:
    """Who a message is from."""

    from_addr: str
    """The From header, such as `Acme <news@acme.example>`; its address is the envelope sender."""
    reply_to: str | None = None
    """The Reply-To header, if replies go elsewhere."""


class _Unusual(Exception):
    """Raised inside `email_bytes` for input it leaves to the standard library."""


def email_bytes(message: OutboundMessage, sender: Sender) -> bytes:
    """The message as sent: CRLF line ends, 7-bit clean, the same content as `build_email()`.

    Raises what `build_email()` raises, for the same input.
    """
    headers = _headers(message, sender)
    try:
        head = [
            _header_line(name, value) for name, value in headers if name.lower() not in _NOT_SENT
        ]
    except _Unusual:
        return build_email(message, sender).as_bytes(policy=SMTP_POLICY)
    body = _body(message)
    return (_CRLF.join(head) + _CRLF).encode("ascii") + body


def build_email(message: OutboundMessage, sender: Sender) -> EmailMessage:
    """The MIME message for `message`: text and HTML parts, Message-ID, unsubscribe headers.

    Raises `PermanentChannelError` for what lead data or a template can get wrong
    (an invalid address, no content) and `ValueError` for what only the calling
    code can (a malformed Message-ID, a header that belongs to the message).
    """
    email = EmailMessage(policy=POLICY)
    for name, value in _headers(message, sender):
        email[name] = value
    _set_content(email, message)
    return email


def _headers(message: OutboundMessage, sender: Sender) -> list[tuple[str, str]]:
    """The headers above the content, in order, checked; a caller's header replaces ours."""
    if not _MESSAGE_ID.fullmatch(message.message_id):
        raise ValueError(
            f"message_id {message.message_id!r} is not a Message-ID such as <d41d8@mail.example>"
        )
    if not (message.text or message.html):
        raise PermanentChannelError(
            f"email {message.message_id} to {message.to} has neither a text nor an HTML part"
        )
    headers = [("From", _one_line("From", sender.from_addr)), ("To", recipient(message.to)[0])]
    if sender.reply_to:
        headers.append(("Reply-To", _one_line("Reply-To", sender.reply_to)))
    headers.append(("Subject", " ".join(message.subject.split())))
    headers.append(("Date", _date()))
    headers.append(("Message-ID", message.message_id))
    headers += _unsubscribe_headers(message)
    for name, value in message.headers.items():
        key = name.lower()
        if key in _OWN_HEADERS or key.startswith("content-"):
            raise ValueError(f"header {name!r} comes from the message itself; do not set it")
        headers = [h for h in headers if h[0].lower() != key]
        headers.append((name, _one_line(name, value)))
    return headers


def _one_line(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise PermanentChannelError(f"the {name} header {value!r} has a line break")
    return value


def recipient(to: str) -> tuple[str, str]:
    """(the To header, the envelope address), or `PermanentChannelError`."""
    to = _one_line("To", to)
    name, address = parseaddr(to) if "<" in to else ("", to.strip())
    local, _, domain = address.rpartition("@")
    if not local or not domain or "@" in local or any(c.isspace() for c in address):
        raise PermanentChannelError(f"invalid email address {to!r}")
    return (formataddr((name, address)) if name else address), address


def from_domain(from_addr: str) -> str:
    """The domain of a From header's address, lower case (`localhost` when it has none)."""
    return parseaddr(from_addr)[1].rpartition("@")[2].lower().rstrip(".") or "localhost"


def _unsubscribe_headers(message: OutboundMessage) -> list[tuple[str, str]]:
    targets = []
    url = message.unsubscribe_url
    if url:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"unsubscribe_url {url!r} is not an http(s) URL")
        targets.append(f"<{_one_line('List-Unsubscribe', url)}>")
    if message.unsubscribe_mailto:
        address = message.unsubscribe_mailto.removeprefix("mailto:")
        targets.append(f"<mailto:{_one_line('List-Unsubscribe', address)}>")
    if not targets:
        return []
    headers = [("List-Unsubscribe", ", ".join(targets))]
    if url and url.startswith("https://"):  # RFC 8058 one-click needs an HTTPS URI
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return headers


def _boundary(message: OutboundMessage) -> str:
    """A boundary from the Message-ID: a resent message is laid out the same."""
    return "=_" + hashlib.sha256(message.message_id.encode()).hexdigest()[:32]


def _set_content(email: EmailMessage, message: OutboundMessage) -> None:
    if message.text:
        email.set_content(message.text)
        if message.html:
            # Deterministic, and the generator need not compile a regex for a random boundary.
            boundary = _boundary(message)
            clash = boundary in message.text or boundary in message.html
            email.make_alternative(boundary=None if clash else boundary)
            email.add_alternative(message.html, subtype="html")
    else:
        email.set_content(message.html, subtype="html")


# ------------------------------------------------------------------ the wire form


def _header_line(name: str, value: str) -> str:
    """``Name: value``, encoded and folded; `_Unusual` for what the standard library should do."""
    if not _HEADER_NAME.fullmatch(name):
        raise _Unusual(name)
    if name.lower() in _ADDRESS_HEADERS or name == "To":
        text = _addresses(name, value)
    elif value.isascii() and "=?" not in value:
        text = _fold(name, value)
    else:
        text = f"{name}: " + _encoded_words(name, value)
    if len(text) > _LINE_LIMIT and any(len(line) > _LINE_LIMIT for line in text.split(_CRLF)):
        raise _Unusual(name)
    return text


def _encoded_words(name: str, value: str) -> str:
    """RFC 2047 encoded words in UTF-8, folded between words; also for ASCII that looks encoded."""
    return Header(value, "utf-8", header_name=name).encode(linesep=_CRLF)


def _fold(name: str, value: str) -> str:
    """An ASCII header line folded at spaces to `_FOLD_AT` columns where it can be."""
    line = f"{name}: {value}"
    if len(line) <= _FOLD_AT:
        return line
    first, *words = value.split(" ")
    lines, current = [], f"{name}: {first}"
    for word in words:
        if current.strip() and len(current) + 1 + len(word) > _FOLD_AT:
            lines.append(current)
            current = " " + word
        else:
            current += " " + word
    lines.append(current)
    return _CRLF.join(lines)


def _addresses(name: str, value: str) -> str:
    """An address header: display names quoted or encoded; `_Unusual` for non-ASCII addresses."""
    if _BARE_ADDRESS.fullmatch(value):  # a lead's address, as `recipient()` gives it
        return f"{name}: {value}"
    return _parsed_addresses(name, value)


@lru_cache(maxsize=64)
def _parsed_addresses(name: str, value: str) -> str:
    """`_addresses` for a name and an address; kept, for the sender's headers repeat."""
    pairs = getaddresses([value])
    if not pairs or any(not a.isascii() or "@" not in a for _, a in pairs):
        raise _Unusual(name)
    mailboxes = [_mailbox(n, a) for n, a in pairs]
    line = f"{name}: " + ", ".join(mailboxes)
    if len(line) <= _FOLD_AT or _CRLF in line:
        return line
    return f"{name}: " + f",{_CRLF} ".join(mailboxes)


def _mailbox(name: str, address: str) -> str:
    if not name or name.isascii():
        return formataddr((name, address))
    return f"{Header(name, 'utf-8').encode(linesep=_CRLF)} <{address}>"


def _body(message: OutboundMessage) -> bytes:
    """``MIME-Version``, the content headers and the content, after the other headers."""
    if not (message.text and message.html):
        subtype, content = ("plain", message.text) if message.text else ("html", message.html)
        return b"MIME-Version: 1.0\r\n" + _part(subtype, content)
    text, html = _part("plain", message.text), _part("html", message.html)
    boundary = _boundary(message)
    for n in range(1, 100):
        if f"--{boundary}".encode() not in text + html:
            break
        boundary = "=_" + hashlib.sha256(f"{n}{message.message_id}".encode()).hexdigest()[:32]
    delimiter = f"\r\n--{boundary}\r\n".encode()
    return b"".join(
        (
            b"MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'.encode(),
            delimiter,
            text,
            delimiter,
            html,
            f"\r\n--{boundary}--\r\n".encode(),
        )
    )


def _part(subtype: str, content: str) -> bytes:
    """One text part, headers and body, in the shortest 7-bit transfer encoding."""
    lines = content.encode("utf-8").splitlines()
    body = b"\r\n".join(lines) + b"\r\n"
    if body.isascii() and max(map(len, lines), default=0) <= _FOLD_AT:
        encoding, encoded = "7bit", body
    else:
        encoding, encoded = min(_encodings(body), key=lambda e: len(e[1]))
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {encoding}'
    return head.encode() + b"\r\n\r\n" + encoded


def _encodings(body: bytes) -> Iterator[tuple[str, bytes]]:
    """Quoted-printable, and base64 too when it may be shorter (most bytes not ASCII)."""
    qp = binascii.b2a_qp(body, istext=True)
    yield "quoted-printable", qp
    if len(qp) > len(body) * 4 // 3:
        yield "base64", base64.encodebytes(body).replace(b"\n", b"\r\n")


def _date() -> str:
    """The Date header's value, made once a second."""
    global _last_date
    now = time.time()
    second, text = _last_date
    if int(now) != second:
        text = format_datetime(datetime.fromtimestamp(int(now), UTC))
        _last_date = (int(now), text)
    return text


_last_date = (0, "")
