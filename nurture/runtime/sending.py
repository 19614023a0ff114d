"""Sending: the channels of a process, an event loop to run them on, and what receipts mean.

Channels are made once per process, on one event loop in a background thread
(`SendLoop`), and shared by every worker thread: the SMTP channel keeps its
pool of persistent connections across batches, the HTTP channels their
clients. A batch's messages go out concurrently (`send_all`), bounded by a
semaphore the process's batches share and by each channel's own pool.

Which channel: with ``NURTURE_SMTP_URL`` email goes over SMTP, and SMS,
WeChat and webhooks to their configured providers (a channel without one
fails each message permanently, naming the setting). Without an SMTP URL
(the embedded mode) every message goes to the outbox folder.

What a receipt means for the lead: `blames_address` tells a hard bounce (the
server refused the recipient, the number or openid is invalid) from a
failure of the message itself; only the former suppresses the lead.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import timedelta
from typing import Any, Final, TypeVar

from channels import (
    Channel,
    ChannelConfigError,
    OutboundMessage,
    OutboxChannel,
    Receipt,
    Sender,
    SmsChannel,
    SmtpChannel,
    WebhookChannel,
    WechatChannel,
)
from nurture.config import Settings

logger = logging.getLogger("nurture.runtime")

T = TypeVar("T")
CHANNELS: Final = ("email", "sms", "wechat", "webhook")
MAX_RETRY: Final = timedelta(hours=1)
SEND_TIMEOUT: Final = 300.0
"""Seconds a batch's sends may take in all before the worker gives up waiting."""

ADDRESS_FAILURES: Final = (
    "recipient refused",
    "invalid email address",
    "invalid_number",
    "invalid number",
    "invalid phone",
    "wechat error 40003",
    "wechat error 43004",
    "unknown user",
    "no such user",
    "mailbox unavailable",
)
"""Words in a permanent failure that say the address itself is bad: a hard bounce."""


def make_channels(settings: Settings) -> dict[str, Channel]:
    """The channels `settings` configure, by channel name; call on the loop that runs them."""
    sender = Sender(settings.sender_address())
    webhooks = settings.webhook_url or settings.crm_webhook_url or settings.wecom_url
    if settings.smtp_url is None:
        outbox = OutboxChannel(settings.outbox, sender=sender)
        made: dict[str, Channel] = dict.fromkeys(CHANNELS, outbox)
        if webhooks:  # a configured webhook is called, outbox or not
            made["webhook"] = WebhookChannel(secret=settings.webhook_secret)
        return made
    smtp = SmtpChannel(settings.smtp_config(), pool_size=settings.send_concurrency)
    made = {"email": smtp}
    if settings.sms_url:
        made["sms"] = SmsChannel(settings.sms_url, token=settings.sms_token)
    if settings.wechat_url:
        made["wechat"] = WechatChannel(settings.wechat_url, token=settings.wechat_token)
    if webhooks:
        made["webhook"] = WebhookChannel(secret=settings.webhook_secret)
    return made


MISSING_SETTING: Final = {
    "email": "NURTURE_SMTP_URL",
    "sms": "NURTURE_SMS_URL",
    "wechat": "NURTURE_WECHAT_URL",
    "webhook": "NURTURE_WEBHOOK_URL",
}


class SendLoop:
    """An event loop in a daemon thread that owns the process's channels."""

    def __init__(self, make: Callable[[], Mapping[str, Channel]]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="nurture-send-loop", daemon=True
        )
        self._thread.start()
        self._closed = False
        self._slots: dict[int, asyncio.Semaphore] = {}

        async def build() -> Mapping[str, Channel]:
            return make()

        self.channels: Mapping[str, Channel] = self.run(build())

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = SEND_TIMEOUT) -> T:
        """Run `coroutine` on the loop and wait for its result (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def send_all(self, messages: Sequence[OutboundMessage], limit: int) -> list[Receipt]:
        """Send `messages` concurrently, at most `limit` at once in this process; a receipt each.

        The bound is shared by every thread's batches and taken first come,
        first served: a batch queued first goes out first and its thread can
        store it and plan the next while the other batches send. (A bound per
        batch would let each thread's batch take turns, all of them finishing
        together, with the connections idle while every thread plans again.)
        """
        if not messages:
            return []
        return self.run(self._send_all(messages, limit))

    async def _send_all(self, messages: Sequence[OutboundMessage], limit: int) -> list[Receipt]:
        slots = self._slots.get(limit)
        if slots is None:  # made on the loop, which alone uses it
            slots = self._slots[limit] = asyncio.Semaphore(limit)
        return await send_all(self.channels, messages, slots)

    def close(self) -> None:
        """Close the channels and stop the loop."""
        if self._closed:
            return
        self._closed = True
        unique = {id(c): c for c in self.channels.values()}.values()

        async def close_all() -> None:
            await asyncio.gather(*(c.aclose() for c in unique), return_exceptions=True)

        try:
            self.run(close_all(), timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._loop.close()


async def send_all(
    channels: Mapping[str, Channel],
    messages: Sequence[OutboundMessage],
    limit: int | asyncio.Semaphore,
) -> list[Receipt]:
    """Each message over its channel, `limit` at once; never raises, every failure a receipt.

    `limit` may be a semaphore shared with other calls, to bound them together.
    """
    slots = asyncio.Semaphore(limit) if isinstance(limit, int) else limit

    async def one(message: OutboundMessage) -> Receipt:
        channel = channels.get(message.channel)
        if channel is None:
            setting = MISSING_SETTING.get(message.channel, "a channel")
            return Receipt.permanent(f"no {message.channel} channel: set {setting}")
        async with slots:
            try:
                return await channel.send(message)
            except ChannelConfigError as e:
                return Receipt.transient(f"the {message.channel} channel is misconfigured: {e}")
            except Exception as e:  # a bug in a channel must not lose the batch's receipts
                logger.exception("sending %s failed", message.message_id)
                return Receipt.transient(f"{type(e).__name__}: {e}")

    return list(await asyncio.gather(*(one(m) for m in messages)))


def blames_address(receipt: Receipt) -> bool:
    """Whether a permanent failure is a hard bounce: the address itself is bad."""
    detail = receipt.detail.lower()
    return any(words in detail for words in ADDRESS_FAILURES)


def retry_delay(
    attempts: int, base: float, retry_after: float | None, rng: random.Random | None = None
) -> timedelta:
    """Exponential backoff with jitter: `base` × 2^(attempts-1), half to all of it, ≤ 1 h."""
    ceiling = min(base * 2 ** max(attempts - 1, 0), MAX_RETRY.total_seconds())
    delay = ceiling * (0.5 + 0.5 * (rng or random).random())
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY.total_seconds()))
    return timedelta(seconds=delay)
