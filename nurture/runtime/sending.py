"""Sending: the channels of a process, an event loop to run them on, and what receipts mean.

Channels are made once per process, on one event loop in a background thread
(`SendLoop`), and shared by every worker thread: the SMTP channel keeps its
pool of persistent connections across batches, the HTTP channels their
clients. A batch's messages go out concurrently (`send_all`), bounded by a
semaphore the process's batches share and by each channel's own pool.

Which channel: with ``NURTURE_SMTP_URL`` email goes over SMTP, else to the
outbox folder (the embedded mode). SMS, WeChat and webhooks go to their
configured providers in both modes; one without a provider writes to the
outbox in the embedded mode, and fails each message permanently, naming the
setting, otherwise.

Each send is marked in the database as handed to its channel just before
the call, and its answer stored as soon as it comes (`nurture.runtime.handover`).
A message that could not be marked (another job has the touch) is not sent;
nor is one whose turn comes after `SendLoop.stop_handing` (the process is
shutting down): both come back as None, handed back to the next job.

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
from urllib.parse import urlsplit

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
from nurture.runtime.handover import GroupCommit, Handoff, Ledger

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
    """The channels `settings` configure, by channel name; call on the loop that runs them.

    Email goes over SMTP when ``NURTURE_SMTP_URL`` is set, else to the outbox
    folder. SMS, WeChat and webhooks go to their providers whenever those are
    configured, SMTP or not; without one, to the outbox in the embedded mode
    (no SMTP URL), and nowhere otherwise (each message fails, naming the setting).
    """
    email = email_channel(settings)
    made: dict[str, Channel] = (
        dict.fromkeys(CHANNELS, email) if settings.smtp_url is None else {"email": email}
    )
    if settings.sms_url:
        made["sms"] = SmsChannel(settings.sms_url, token=settings.sms_token)
    wechat = wechat_channel(settings)
    if wechat is not None:
        made["wechat"] = wechat
    if settings.webhook_url or settings.crm_webhook_url or settings.wecom_url:
        made["webhook"] = WebhookChannel(secret=settings.webhook_secret)
    return made


def email_channel(settings: Settings) -> Channel:
    """The channel email goes through: SMTP with ``NURTURE_SMTP_URL``, else the outbox folder."""
    dkim = settings.dkim_signer()
    if settings.smtp_url is None:
        sender = Sender(settings.sender_address())
        return OutboxChannel(settings.outbox, sender=sender, dkim=dkim)
    return SmtpChannel(settings.smtp_config(), pool_size=settings.send_concurrency, dkim=dkim)


def send_email_now(settings: Settings, messages: Sequence[OutboundMessage]) -> list[Receipt]:
    """Send `messages` through a fresh email channel, then close it: for the odd message a
    command or a page sends itself (a console invitation), not for a worker's touches."""

    async def go() -> list[Receipt]:
        channel = email_channel(settings)
        try:
            sent = await send_all({"email": channel}, messages, settings.send_concurrency)
        finally:
            await channel.aclose()
        return [r or Receipt.transient("not sent") for r in sent]

    return asyncio.run(go()) if messages else []


def destinations(settings: Settings) -> dict[str, str]:
    """Where each channel's messages go, in words, for a start-up line."""
    outbox = f"the outbox folder {settings.outbox}/"
    fallback = outbox if settings.smtp_url is None else "nowhere"
    email = outbox
    if settings.smtp_url is not None:
        config = settings.smtp_config()
        email = f"SMTP {config.host}:{config.port}"
    if settings.domain_rates:  # how fast email may go to each receiving domain
        email += " (at most " + ", ".join(map(str, settings.domain_rates)) + ")"
    wechat = _shown(settings.wechat_url) if settings.wechat_url else fallback
    if settings.wechat_appid:
        wechat = f"WeChat {settings.wechat_api_url} (appid {settings.wechat_appid})"
    return {
        "email": email,
        "SMS": _shown(settings.sms_url) if settings.sms_url else fallback,
        "WeChat": wechat,
        "webhooks": _shown(settings.webhook_url) if settings.webhook_url else fallback,
    }


def _shown(url: str | None) -> str:
    """A provider URL without its query, credentials or fragment (they may hold secrets)."""
    parts = urlsplit(url or "")
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def wechat_channel(settings: Settings) -> WechatChannel | None:
    """WeChat through the relay, or WeChat itself with the database's shared token; or None."""
    if settings.wechat_url:
        return WechatChannel(settings.wechat_url, token=settings.wechat_token)
    endpoint = settings.wechat_token_endpoint()
    if endpoint is None:
        return None
    from nurture.runtime.database import runtime_engine, sessions_for
    from nurture.runtime.wechat_tokens import SharedTokens

    engine = runtime_engine(settings.database_url, pool_size=1)
    tokens = SharedTokens(sessions_for(engine), endpoint, owned=engine)
    return WechatChannel(tokens=tokens, api_url=settings.wechat_api_url)


MISSING_SETTING: Final = {
    "email": "NURTURE_SMTP_URL",
    "sms": "NURTURE_SMS_URL",
    "wechat": "NURTURE_WECHAT_APPID and NURTURE_WECHAT_SECRET (or a relay in NURTURE_WECHAT_URL)",
    "webhook": "NURTURE_WEBHOOK_URL",
}


class SendLoop:
    """An event loop in a daemon thread that owns the process's channels."""

    def __init__(
        self, make: Callable[[], Mapping[str, Channel]], ledger: Ledger | None = None
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._ledger = ledger
        self._commits: GroupCommit | None = None
        self.stopping = threading.Event()
        """Set by `stop_handing`: sends not yet handed over are handed back instead."""
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

    def stop_handing(self) -> None:
        """Hand nothing more to the channels; sends on the wire finish (a graceful shutdown)."""
        self.stopping.set()

    def send_all(
        self,
        messages: Sequence[OutboundMessage],
        limit: int,
        handoffs: Sequence[Handoff] | None = None,
    ) -> list[Receipt | None]:
        """Send `messages` concurrently, at most `limit` at once in this process; a receipt
        each, None for one not handed to its channel. `handoffs` (one a message) are
        marked in the loop's ledger before each send and get their answers after.

        The bound is shared by every thread's batches and taken first come,
        first served: a batch queued first goes out first and its thread can
        store it and plan the next while the other batches send. (A bound per
        batch would let each thread's batch take turns, all of them finishing
        together, with the connections idle while every thread plans again.)
        """
        if not messages:
            return []
        return self.run(self._send_all(messages, limit, handoffs))

    async def _send_all(
        self, messages: Sequence[OutboundMessage], limit: int, handoffs: Sequence[Handoff] | None
    ) -> list[Receipt | None]:
        slots = self._slots.get(limit)
        if slots is None:  # made on the loop, which alone uses it
            slots = self._slots[limit] = asyncio.Semaphore(limit)
        if self._commits is None and self._ledger is not None:
            self._commits = GroupCommit(self._ledger)
        marks = Marks(self._commits, handoffs, self.stopping) if handoffs is not None else None
        return await send_all(self.channels, messages, slots, marks)

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


class Marks:
    """The handover marks of one batch: one `Handoff` a message, written through `commits`."""

    def __init__(
        self,
        commits: GroupCommit | None,
        handoffs: Sequence[Handoff],
        stopping: threading.Event | None = None,
    ) -> None:
        self.commits = commits
        self.handoffs = handoffs
        self.stopping = stopping
        self.written: list[asyncio.Future[None]] = []

    async def hand(self, index: int) -> bool:
        """Whether message `index` may go out: not stopping, and its mark committed."""
        if self.stopping is not None and self.stopping.is_set():
            return False
        handoff = self.handoffs[index]
        if self.commits is None:
            handoff.handed = True
            return True
        return await self.commits.hand(handoff)

    def answer(self, index: int, receipt: Receipt) -> None:
        if self.commits is not None:
            self.written.append(self.commits.answer(self.handoffs[index], receipt))


async def send_all(
    channels: Mapping[str, Channel],
    messages: Sequence[OutboundMessage],
    limit: int | asyncio.Semaphore,
    marks: Marks | None = None,
) -> list[Receipt | None]:
    """Each message over its channel, `limit` at once; never raises, every failure a receipt.

    `limit` may be a semaphore shared with other calls, to bound them together.
    With `marks`, each message is marked handed over before its send (None when
    it may not be: it is not sent) and its answer queued for storing while it
    still holds its slot, so a process has at most `limit` sends marked and
    unanswered at any moment.
    """
    slots = asyncio.Semaphore(limit) if isinstance(limit, int) else limit

    async def one(index: int, message: OutboundMessage) -> Receipt | None:
        channel = channels.get(message.channel)
        if channel is None:
            setting = MISSING_SETTING.get(message.channel, "a channel")
            return Receipt.permanent(f"no {message.channel} channel: set {setting}")
        async with slots:
            if marks is not None and not await marks.hand(index):
                return None
            receipt = await _send(channel, message)
            if marks is not None:
                marks.answer(index, receipt)
            return receipt

    receipts = list(await asyncio.gather(*(one(n, m) for n, m in enumerate(messages))))
    if marks is not None and marks.written:
        await asyncio.gather(*marks.written)
    return receipts


async def _send(channel: Channel, message: OutboundMessage) -> Receipt:
    try:
        return await channel.send(message)
    except ChannelConfigError as e:  # raised before anything went out
        return Receipt.transient(f"the {message.channel} channel is misconfigured: {e}")
    except Exception as e:  # a bug in a channel: the message may or may not have gone out
        logger.exception("sending %s failed", message.message_id)
        return Receipt.unknown(f"{type(e).__name__}: {e}")


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
