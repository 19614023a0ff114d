"""OutboxChannel writes files; RecordingChannel keeps a list."""

from __future__ import annotations

import json
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest

from channels import (
    ChannelConfigError,
    DeliveryStatus,
    OutboundMessage,
    OutboxChannel,
    Receipt,
    RecordingChannel,
    Sender,
)
from channels.outbox import file_stem


def welcome(n: int = 1, text: str = "Hello") -> OutboundMessage:
    return OutboundMessage(
        "email",
        "lin@client.test",
        f"<d-{n}.s-1@mail.acme.test>",
        subject="Welcome",
        html=f"<p>{text}</p>",
        text=text,
        unsubscribe_url="https://t.acme.test/u/1",
    )


def parse(path: Path) -> EmailMessage:
    message = BytesParser(policy=default).parsebytes(path.read_bytes())
    assert isinstance(message, EmailMessage)
    return message


@pytest.fixture
def outbox(tmp_path: Path) -> OutboxChannel:
    """An outbox in a folder that does not exist yet."""
    return OutboxChannel(tmp_path / "outbox", sender=Sender("news@acme.test"), fsync=False)


@pytest.mark.asyncio
async def test_an_email_becomes_an_eml_file_named_after_its_message_id(
    outbox: OutboxChannel,
) -> None:
    # When a message is sent to the outbox
    receipt = await outbox.send(welcome(1))

    # Then one .eml file holds it, readable by the email parser
    path = outbox.folder / "d-1.s-1@mail.acme.test.eml"
    assert receipt == Receipt.sent(path.name, f"written to {path}")
    assert [p.name for p in outbox.folder.iterdir()] == [path.name]
    message = parse(path)
    assert message["Message-ID"] == "<d-1.s-1@mail.acme.test>"
    assert message["From"] == "news@acme.test"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = message.get_body(("html",))
    assert html is not None and html.get_content().strip() == "<p>Hello</p>"


@pytest.mark.asyncio
async def test_sending_the_same_message_id_twice_rewrites_one_file(outbox: OutboxChannel) -> None:
    # Given a message already in the outbox
    await outbox.send(welcome(1, "first"))

    # When the same Message-ID is sent again (a retried job)
    receipt = await outbox.send(welcome(1, "second"))

    # Then there is still one file, holding the latest, and no temporary file is left
    assert receipt.status is DeliveryStatus.SENT
    [path] = outbox.folder.iterdir()
    text = parse(path).get_body(("plain",))
    assert text is not None and text.get_content().strip() == "second"


@pytest.mark.asyncio
async def test_many_messages_make_many_files(outbox: OutboxChannel) -> None:
    for n in range(20):
        await outbox.send(welcome(n))

    assert len(list(outbox.folder.glob("*.eml"))) == 20
    assert list(outbox.folder.glob(".*")) == []


@pytest.mark.asyncio
async def test_other_channels_become_json_files(outbox: OutboxChannel) -> None:
    message = OutboundMessage(
        "wechat",
        "o-abc123",
        "w-7",
        body={"template_id": "T1", "data": {"first": "你好"}},
        metadata={"lead": "42"},
    )

    receipt = await outbox.send(message)

    assert receipt.ok
    record = json.loads((outbox.folder / "w-7.wechat.json").read_text(encoding="utf-8"))
    assert record["to"] == "o-abc123"
    assert record["body"] == {"template_id": "T1", "data": {"first": "你好"}}
    assert record["metadata"] == {"lead": "42"}


@pytest.mark.asyncio
async def test_an_email_without_content_is_a_permanent_failure(outbox: OutboxChannel) -> None:
    message = OutboundMessage("email", "lin@client.test", "<x@mail.acme.test>", subject="Hi")

    receipt = await outbox.send(message)

    assert receipt.status is DeliveryStatus.FAILED_PERMANENT
    assert not outbox.folder.exists()


@pytest.mark.asyncio
async def test_a_folder_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("not a folder")
    outbox = OutboxChannel(tmp_path / "taken", fsync=False)

    with pytest.raises(ChannelConfigError, match="cannot write to outbox folder"):
        await outbox.send(welcome(1))


@pytest.mark.asyncio
async def test_fsync_on_writes_the_same_file(tmp_path: Path) -> None:
    async with OutboxChannel(tmp_path) as outbox:
        assert (await outbox.send(welcome(3))).ok

    assert (tmp_path / "d-3.s-1@mail.acme.test.eml").exists()


@pytest.mark.parametrize(
    ("message_id", "stem"),
    [
        ("<d-1.s-1@mail.acme.test>", "d-1.s-1@mail.acme.test"),
        ("plain-id", "plain-id"),
        ("<../../etc/passwd@x>", "_.._etc_passwd@x-"),
        ("<a/b@x>", "a_b@x-"),
        ("<a_b@x>", "a_b@x"),
    ],
)
def test_file_names_are_safe_and_distinct(message_id: str, stem: str) -> None:
    assert file_stem(message_id).startswith(stem)
    assert "/" not in file_stem(message_id)
    assert not file_stem(message_id).startswith(".")


def test_ids_that_sanitise_alike_get_different_files() -> None:
    assert file_stem("<a/b@x>") != file_stem("<a_b@x>") != file_stem("<a:b@x>")


@pytest.mark.asyncio
async def test_recording_channel_keeps_messages_and_answers() -> None:
    # Given a twin that refuses one address
    def respond(message: OutboundMessage) -> Receipt:
        if message.to == "gone@client.test":
            return Receipt.permanent("recipient refused: 550 no such user")
        return Receipt.sent("ok")

    channel = RecordingChannel(respond)

    # When two messages are sent
    first = await channel.send(welcome(1))
    second = await channel.send(OutboundMessage("email", "gone@client.test", "<2@x>", text="x"))
    await channel.aclose()

    # Then both are recorded, with the answers given
    assert [m.message_id for m in channel.messages] == ["<d-1.s-1@mail.acme.test>", "<2@x>"]
    assert first.ok and second.status is DeliveryStatus.FAILED_PERMANENT
    assert channel.closed
    with pytest.raises(RuntimeError, match="after aclose"):
        await channel.send(welcome(3))


@pytest.mark.asyncio
async def test_recording_channel_says_sent_by_default() -> None:
    channel = RecordingChannel()

    assert await channel.send(welcome(1)) == Receipt.sent("recorded-1")
