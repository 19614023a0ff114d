"""What receipts mean for a lead, backoff, and sending a batch over the channels."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from datetime import timedelta

import pytest

from channels import ChannelConfigError, OutboundMessage, Receipt, RecordingChannel
from nurture.runtime.sending import SendLoop, blames_address, retry_delay, send_all


@pytest.mark.parametrize(
    ("detail", "bounce"),
    [
        ("recipient refused: 550 5.1.1 <ada@x.example>: no such user", True),
        ("invalid email address 'ada'", True),
        ("invalid number: +86 123 is too short", True),
        ("WeChat error 43004: require subscribe", True),
        ("message refused: 552 5.3.4 message too big", False),
        ("render failed: hello.email.j2:3: `lead.budget` is undefined", False),
    ],
)
def test_only_a_bad_address_is_a_hard_bounce(detail: str, bounce: bool) -> None:
    assert blames_address(Receipt.permanent(detail)) is bounce


def test_backoff_doubles_with_jitter_up_to_an_hour() -> None:
    rng = random.Random(1)
    delays = [retry_delay(n, 60, None, rng) for n in range(1, 9)]
    for n, delay in enumerate(delays, 1):
        ceiling = min(60 * 2 ** (n - 1), 3600)
        assert timedelta(seconds=ceiling / 2) <= delay <= timedelta(seconds=ceiling)
    assert retry_delay(1, 60, 600.0, rng) == timedelta(seconds=600)  # Retry-After wins


def _message(channel: str, n: int = 0) -> OutboundMessage:
    return OutboundMessage(channel, "+8613912345678", f"<m{n}@acme.test>", text="hi")


def test_a_batch_gets_a_receipt_per_message_whatever_goes_wrong() -> None:
    class Broken(RecordingChannel):
        async def send(self, message: OutboundMessage) -> Receipt:
            raise ChannelConfigError("smtp.acme.test refused our credentials")

    channels = {"email": Broken(), "sms": RecordingChannel()}
    messages = [_message("sms", 1), _message("email", 2), _message("wechat", 3)]

    receipts = asyncio.run(send_all(channels, messages, 2))

    assert receipts[0].ok
    assert receipts[1].status == "failed_transient" and "misconfigured" in receipts[1].detail
    assert receipts[2] == Receipt.permanent(
        "no wechat channel: set NURTURE_WECHAT_APPID and NURTURE_WECHAT_SECRET "
        "(or a relay in NURTURE_WECHAT_URL)"
    )


def test_the_batches_of_a_process_share_one_bound_first_come_first_served() -> None:
    # Given a send loop whose channel notes how many messages are in flight at once
    class Slow(RecordingChannel):
        in_flight = most = 0

        async def send(self, message: OutboundMessage) -> Receipt:
            Slow.in_flight += 1
            Slow.most = max(Slow.most, Slow.in_flight)
            await asyncio.sleep(0.002)
            Slow.in_flight -= 1
            return await super().send(message)

    channel = Slow()
    loop = SendLoop(lambda: {"sms": channel})
    batches = [[_message("sms", 100 * b + n) for n in range(20)] for b in range(4)]
    try:
        # When four threads send a batch each, with a bound of 3
        threads = [threading.Thread(target=loop.send_all, args=(b, 3)) for b in batches]
        for thread in threads:
            thread.start()
            time.sleep(0.05)  # queued in this order
        for thread in threads:
            thread.join()
    finally:
        loop.close()

    # Then at most 3 were in flight in all, and the first batch queued went out first
    assert Slow.most == 3
    batch_of = [int(m.message_id[2:].split("@")[0]) // 100 for m in channel.messages]
    assert batch_of[:20] == [0] * 20
