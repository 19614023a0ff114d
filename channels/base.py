"""What every channel shares: the message going out, the receipt coming back, the protocol.

A new channel is a class with two coroutines, `send(message) -> Receipt` and
`aclose()`. It translates its library's errors into a `Receipt` (what happened
to this message) or a `ChannelConfigError` (nothing can go out).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol, Self, runtime_checkable

from channels.errors import OutcomeUnknownError, PermanentChannelError, TransientChannelError

#: Payload of a structured message: a JSON object, or JSON text (an SMS text for `sms`).
Body = Mapping[str, Any] | str | None


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One rendered message for one recipient, ready for a channel."""

    channel: str
    """`email`, `sms`, `wechat` or `webhook`; a channel refuses messages meant for another."""
    to: str
    """The recipient: an email address, a phone number (E.164), an openid or a URL."""
    message_id: str
    """Deterministic id from the caller; for email a Message-ID such as `<d41d8@mail.example>`."""
    subject: str = ""
    """Email subject; line breaks are folded into spaces."""
    html: str = ""
    """Email HTML part."""
    text: str = ""
    """Email plain-text part; the SMS text when `body` is not a string."""
    body: Body = None
    """Payload for sms (the text), wechat (`template_id`, `data`, `url`) and webhook (JSON)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra email headers, such as `X-Campaign`; they replace headers of the same name."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    """The caller's own labels (lead, campaign, step); channels do not send them."""
    unsubscribe_url: str | None = None
    """An https URL for RFC 8058 one-click unsubscribe (`List-Unsubscribe`)."""
    unsubscribe_mailto: str | None = None
    """An address for `List-Unsubscribe` by mail, such as `unsubscribe@example.com`."""
    return_path: str | None = None
    """Email envelope sender (MAIL FROM), where bounces go, such as a per-delivery VERP
    address; None: the From address."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        if isinstance(self.body, Mapping):
            object.__setattr__(self, "body", MappingProxyType(dict(self.body)))


class DeliveryStatus(StrEnum):
    """What happened to a message; equal to its string value."""

    SENT = "sent"
    FAILED_PERMANENT = "failed_permanent"
    FAILED_TRANSIENT = "failed_transient"
    UNKNOWN = "unknown"
    """Handed over, then no answer (a timeout or a dropped connection): maybe delivered."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """The outcome of one `send()`."""

    status: DeliveryStatus
    """Sent, failed for good (do not retry), failed for now (retry with backoff), or unknown
    (the message went out but its answer did not come back: never retry on your own)."""
    provider_id: str | None = None
    """The provider's id for the message (SMTP queue id, SMS id, WeChat msgid), if it gave one."""
    detail: str = ""
    """A sentence for people: the server's reply or the reason for a failure."""
    retry_after: float | None = None
    """Seconds the provider asked us to wait (HTTP `Retry-After`), if it said."""

    @classmethod
    def sent(cls, provider_id: str | None = None, detail: str = "") -> Receipt:
        return cls(DeliveryStatus.SENT, provider_id, detail)

    @classmethod
    def permanent(cls, detail: str) -> Receipt:
        return cls(DeliveryStatus.FAILED_PERMANENT, None, detail)

    @classmethod
    def transient(cls, detail: str, retry_after: float | None = None) -> Receipt:
        return cls(DeliveryStatus.FAILED_TRANSIENT, None, detail, retry_after)

    @classmethod
    def unknown(cls, detail: str) -> Receipt:
        return cls(DeliveryStatus.UNKNOWN, None, detail)

    @property
    def ok(self) -> bool:
        return self.status is DeliveryStatus.SENT

    def raise_for_status(self) -> Receipt:
        """Return self when sent; else raise `TransientChannelError`, `OutcomeUnknownError`
        or `PermanentChannelError`."""
        if self.status is DeliveryStatus.FAILED_TRANSIENT:
            raise TransientChannelError(self.detail)
        if self.status is DeliveryStatus.UNKNOWN:
            raise OutcomeUnknownError(self.detail)
        if self.status is DeliveryStatus.FAILED_PERMANENT:
            raise PermanentChannelError(self.detail)
        return self


@runtime_checkable
class Channel(Protocol):
    """A delivery adapter: the engine is given one and never picks one itself."""

    async def send(self, message: OutboundMessage) -> Receipt:
        """Deliver one message; report the outcome, raise only `ChannelConfigError`."""
        ...

    async def aclose(self) -> None:
        """Release connections; `send()` may not be called afterwards."""
        ...


class ClosingContext:
    """`async with channel:` closes the channel at the end of the block."""

    _loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        raise NotImplementedError

    def _check_loop(self) -> None:
        """Raise `RuntimeError` when used from an event loop other than the first one."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                f"{type(self).__name__} keeps connections in the event loop it first ran in; "
                "create one channel per event loop (one per worker thread)"
            )


def require_channel(message: OutboundMessage, expected: str, by: str) -> None:
    """Raise `ValueError` when a message meant for another channel reaches `by`."""
    if message.channel != expected:
        raise ValueError(
            f"{by} sends {expected!r} messages; got {message.channel!r} "
            f"for message {message.message_id}"
        )
