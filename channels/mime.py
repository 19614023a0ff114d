"""The MIME message of an email: text and HTML parts, Message-ID, one-click unsubscribe.

`build_email()` is shared by the SMTP channel and the outbox, so what is sent and
what is written are the same bytes. It uses `POLICY`, the standard email policy
with header classes made once (the stock registry makes a class per header,
which costs more than the rest of building a message).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import default
from email.utils import formataddr, formatdate, parseaddr

from channels.base import OutboundMessage
from channels.errors import PermanentChannelError

_MESSAGE_ID = re.compile(r"<[^<>@\s]+@[^<>@\s]+>")
_OWN_HEADERS = {"to", "subject", "message-id", "mime-version"}


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


POLICY = default.clone(header_factory=_HeaderClasses())
"""`email.policy.default`, about twice as fast at building messages."""


@dataclass(frozen=True, slots=True)
class Sender:
    """Who a message is from."""

    from_addr: str
    """The From header, such as `Acme <news@acme.example>`; its address is the envelope sender."""
    reply_to: str | None = None
    """The Reply-To header, if replies go elsewhere."""


def build_email(message: OutboundMessage, sender: Sender) -> EmailMessage:
    """The MIME message for `message`: text and HTML parts, Message-ID, unsubscribe headers.

    Raises `PermanentChannelError` for what lead data or a template can get wrong
    (an invalid address, no content) and `ValueError` for what only the calling
    code can (a malformed Message-ID, a header that belongs to the message).
    """
    if not _MESSAGE_ID.fullmatch(message.message_id):
        raise ValueError(
            f"message_id {message.message_id!r} is not a Message-ID such as <d41d8@mail.example>"
        )
    email = EmailMessage(policy=POLICY)
    email["From"] = _one_line("From", sender.from_addr)
    email["To"] = recipient(message.to)[0]
    if sender.reply_to:
        email["Reply-To"] = _one_line("Reply-To", sender.reply_to)
    email["Subject"] = " ".join(message.subject.split())
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = message.message_id
    for name, value in _unsubscribe_headers(message):
        email[name] = value
    for name, value in message.headers.items():
        if name.lower() in _OWN_HEADERS or name.lower().startswith("content-"):
            raise ValueError(f"header {name!r} comes from the message itself; do not set it")
        del email[name]
        email[name] = _one_line(name, value)
    _set_content(email, message)
    return email


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


def _set_content(email: EmailMessage, message: OutboundMessage) -> None:
    if message.text:
        email.set_content(message.text)
        if message.html:
            # A boundary from the Message-ID: a resent message is laid out the same, and
            # the generator need not compile a regex for a random boundary.
            boundary = "=_" + hashlib.sha256(message.message_id.encode()).hexdigest()[:32]
            clash = boundary in message.text or boundary in message.html
            email.make_alternative(boundary=None if clash else boundary)
            email.add_alternative(message.html, subtype="html")
    elif message.html:
        email.set_content(message.html, subtype="html")
    else:
        raise PermanentChannelError(
            f"email {message.message_id} to {message.to} has neither a text nor an HTML part"
        )
