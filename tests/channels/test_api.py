"""The public API of `channels`: its names, the protocol, receipts and errors."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import channels
from channels import (
    Channel,
    ChannelConfigError,
    ChannelError,
    DeliveryStatus,
    OutboundMessage,
    OutboxChannel,
    OutcomeUnknownError,
    PermanentChannelError,
    Receipt,
    RecordingChannel,
    SmsChannel,
    SmtpChannel,
    SmtpConfig,
    TransientChannelError,
    WebhookChannel,
    WechatChannel,
)


def test_all_is_sorted_and_complete() -> None:
    public = {name for name in dir(channels) if not name.startswith("_")}
    modules = {"base", "dkim", "email", "errors", "mime", "outbox", "sms", "webhook", "wechat"}
    modules.update({"wechat_token", "sms_answers"})
    modules.add("annotations")

    assert channels.__all__ == sorted(channels.__all__)
    assert set(channels.__all__) == public - modules


def test_channels_knows_nothing_of_the_engine() -> None:
    code = "import channels, sys; print(sorted(m for m in sys.modules if m.split('.')[0] in {0}))"
    code = code.format(("nurture", "dsl"))
    root = Path(channels.__file__).parent.parent
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )

    assert result.stdout.strip() == "[]"


@pytest.mark.asyncio
async def test_every_channel_implements_the_protocol(tmp_path: Path) -> None:
    built = [
        SmtpChannel(SmtpConfig("127.0.0.1", from_addr="news@acme.test")),
        OutboxChannel(tmp_path),
        RecordingChannel(),
        SmsChannel("http://127.0.0.1:9/sms"),
        WechatChannel("http://127.0.0.1:9/wechat"),
        WebhookChannel(),
    ]
    for channel in built:
        assert isinstance(channel, Channel), type(channel).__name__
        await channel.aclose()


def test_receipts_raise_for_their_status() -> None:
    sent = Receipt.sent("Q1")

    assert sent.raise_for_status() is sent
    with pytest.raises(TransientChannelError, match="451 greylisted"):
        Receipt.transient("451 greylisted").raise_for_status()
    with pytest.raises(PermanentChannelError, match="550 no such user"):
        Receipt.permanent("550 no such user").raise_for_status()
    with pytest.raises(OutcomeUnknownError, match="no answer"):
        Receipt.unknown("no answer").raise_for_status()


def test_status_is_a_plain_string_too() -> None:
    assert Receipt.permanent("x").status == "failed_permanent"
    assert [s.value for s in DeliveryStatus] == [
        "sent",
        "failed_permanent",
        "failed_transient",
        "unknown",
    ]


def test_errors_form_one_hierarchy_and_pickle() -> None:
    error = ChannelConfigError("SMTP server refused the credentials")

    assert isinstance(error, PermanentChannelError)
    assert isinstance(error, ChannelError)
    assert issubclass(TransientChannelError, ChannelError)
    assert issubclass(OutcomeUnknownError, ChannelError)
    assert not issubclass(OutcomeUnknownError, TransientChannelError)  # never retried
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ChannelConfigError and str(copy) == str(error)


def test_a_message_cannot_be_changed_through_its_mappings() -> None:
    headers = {"X-Campaign": "welcome"}
    message = OutboundMessage("email", "lin@client.test", "<1@x>", headers=headers, body={"a": 1})
    headers["X-Campaign"] = "changed"

    assert message.headers == {"X-Campaign": "welcome"}
    with pytest.raises(TypeError):
        message.headers["X-Campaign"] = "changed"  # type: ignore[index]
    with pytest.raises(TypeError):
        message.body["a"] = 2  # type: ignore[index]
