"""SmtpChannel against a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from typing import Any

import pytest

from channels import (
    ChannelConfigError,
    DeliveryStatus,
    OutboundMessage,
    SmtpChannel,
    SmtpConfig,
)
from tests.channels.servers import PASSWORD, USER, SmtpServer, TlsFiles


def email(n: int = 1, to: str = "lin@client.test", **fields: Any) -> OutboundMessage:
    """Message number `n`, with its own Message-ID."""
    message = OutboundMessage(
        "email",
        to,
        f"<d-{n}.s-1@mail.acme.test>",
        f"Welcome #{n}",
        f"<p>Hi <b>{n}</b></p>",
        f"Hi {n}",
    )
    return replace(message, **fields)


@pytest.mark.asyncio
async def test_a_message_arrives_with_text_and_html_parts(smtp_server: SmtpServer) -> None:
    # Given a channel on the server
    async with SmtpChannel.from_url(smtp_server.url()) as channel:
        # When a message with both parts is sent
        receipt = await channel.send(email(1, text="Hi Lin", html="<p>Hi <b>Lin</b></p>"))

    # Then it arrives once, as multipart/alternative with both parts
    assert receipt.status is DeliveryStatus.SENT
    assert receipt.provider_id == "Q1"
    [delivered] = smtp_server.messages
    assert delivered.mail_from == "news@acme.test"
    assert delivered.rcpt_tos == ["lin@client.test"]
    assert delivered.message.get_content_type() == "multipart/alternative"
    text = delivered.message.get_body(("plain",))
    html = delivered.message.get_body(("html",))
    assert text is not None and text.get_content().rstrip() == "Hi Lin"
    assert html is not None and html.get_content().rstrip() == "<p>Hi <b>Lin</b></p>"


@pytest.mark.asyncio
async def test_headers_arrive_as_given(smtp_server: SmtpServer) -> None:
    # Given a message with an unsubscribe URL and mailto, and a Reply-To in the URL
    url = smtp_server.url(query="reply_to=sales%40acme.test")
    message = email(
        7,
        subject="欢迎, Lin",
        unsubscribe_url="https://t.acme.test/u/tok7",
        unsubscribe_mailto="unsubscribe@acme.test",
        headers={"X-Campaign": "welcome"},
    )

    # When it is sent
    async with SmtpChannel.from_url(url) as channel:
        await channel.send(message)

    # Then the server sees the Message-ID exactly and the RFC 8058 headers
    got = smtp_server.messages[0].message
    assert got["Message-ID"] == "<d-7.s-1@mail.acme.test>"
    assert got["List-Unsubscribe"] == "<https://t.acme.test/u/tok7>, <mailto:unsubscribe@acme.test>"
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert got["Subject"] == "欢迎, Lin"
    assert got["From"] == "news@acme.test"
    assert got["Reply-To"] == "sales@acme.test"
    assert got["X-Campaign"] == "welcome"


@pytest.mark.asyncio
async def test_fifty_messages_over_a_pool_of_two_use_two_connections(
    smtp_server: SmtpServer,
) -> None:
    # Given a pool of two connections
    async with SmtpChannel.from_url(smtp_server.url(), pool_size=2) as channel:
        # When fifty messages are sent at once
        receipts = await asyncio.gather(*(channel.send(email(n)) for n in range(50)))

    # Then all arrive, over at most two connections, never more than two open at once
    assert all(r.ok for r in receipts)
    assert len(smtp_server.messages) == 50
    assert 1 <= smtp_server.connections <= 2
    assert smtp_server.peak <= 2
    assert channel.connections_opened == smtp_server.connections


@pytest.mark.asyncio
async def test_messages_in_sequence_reuse_one_connection(smtp_server: SmtpServer) -> None:
    async with SmtpChannel.from_url(smtp_server.url(), pool_size=4) as channel:
        for n in range(10):
            assert (await channel.send(email(n))).ok

    assert smtp_server.connections == 1


@pytest.mark.asyncio
async def test_reconnects_after_the_server_drops_idle_connections(
    smtp_server: SmtpServer,
) -> None:
    # Given a channel whose connection the server has closed, noticed by the client
    async with SmtpChannel.from_url(smtp_server.url(), pool_size=1) as channel:
        assert (await channel.send(email(1))).ok
        smtp_server.drop_connections()
        await asyncio.sleep(0.05)

        # When the next message goes out
        receipt = await channel.send(email(2))

    # Then it is sent over a new connection
    assert receipt.ok, receipt.detail
    assert len(smtp_server.messages) == 2
    assert smtp_server.connections == 2


@pytest.mark.asyncio
async def test_retries_once_when_a_pooled_connection_turns_out_dead(
    smtp_server: SmtpServer,
) -> None:
    # Given a connection closed by the server before the client could notice
    async with SmtpChannel.from_url(smtp_server.url(), pool_size=1) as channel:
        assert (await channel.send(email(1))).ok
        smtp_server.drop_connections()  # blocks this loop: the close is not read yet

        # When a message is sent at once
        receipt = await channel.send(email(2))

    # Then the dead connection fails, a new one is opened and the message is sent once
    assert receipt.ok, receipt.detail
    assert smtp_server.connections == 2
    assert [m.message["Message-ID"] for m in smtp_server.messages] == [
        "<d-1.s-1@mail.acme.test>",
        "<d-2.s-1@mail.acme.test>",
    ]


@pytest.mark.asyncio
async def test_a_reply_that_comes_after_the_timeout_leaves_the_message_unknown(
    smtp_server: SmtpServer,
) -> None:
    # Given a server that stores a message but says 250 only after 1 s, and a 0.3 s timeout
    smtp_server.recorder.late = 1.0
    async with SmtpChannel.from_url(smtp_server.url(query="timeout=0.3"), pool_size=1) as channel:
        assert (await channel.send(email(1))).status is DeliveryStatus.UNKNOWN

        # When the first message's reply is lost, and the next goes over the same pool
        receipt = await channel.send(email(2))

    # Then each is unknown (maybe delivered), neither was sent again, and both arrived once
    assert receipt.status is DeliveryStatus.UNKNOWN
    assert "after DATA: the message may have been delivered" in receipt.detail
    assert [m.message["Message-ID"] for m in smtp_server.messages] == [
        "<d-1.s-1@mail.acme.test>",
        "<d-2.s-1@mail.acme.test>",
    ]


@pytest.mark.asyncio
async def test_a_connection_dropped_after_data_is_not_retried(smtp_server: SmtpServer) -> None:
    # Given a pooled connection, and a server that stores the next message and then hangs up
    async with SmtpChannel.from_url(smtp_server.url(), pool_size=1) as channel:
        assert (await channel.send(email(1))).ok
        smtp_server.recorder.drop = True

        # When a message goes out over the reused connection
        receipt = await channel.send(email(2))

    # Then it is unknown, and it reached the server once (no retry on a new connection)
    assert receipt.status is DeliveryStatus.UNKNOWN, receipt.detail
    assert "dropped the connection after DATA" in receipt.detail
    assert len(smtp_server.messages) == 2
    assert smtp_server.connections == 1


@pytest.mark.asyncio
async def test_reconnects_after_the_server_idle_timeout(
    smtp_server_factory: type[SmtpServer],
) -> None:
    # Given a server that closes connections idle for 0.2 s (with a 421, as Postfix does)
    server = smtp_server_factory(timeout=0.2)
    server.start()
    async with SmtpChannel.from_url(server.url()) as channel:
        assert (await channel.send(email(1))).ok
        await asyncio.sleep(0.5)

        # When the next message is sent after the timeout
        receipt = await channel.send(email(2))

    # Then it goes out over a new connection
    assert receipt.ok, receipt.detail
    assert server.connections == 2


@pytest.mark.asyncio
async def test_unknown_mailbox_is_a_permanent_failure(smtp_server: SmtpServer) -> None:
    smtp_server.refuse("nobody@client.test", "550 5.1.1 <nobody@client.test>: no such user")

    async with SmtpChannel.from_url(smtp_server.url()) as channel:
        receipt = await channel.send(email(1, to="nobody@client.test"))
        after = await channel.send(email(2))

    assert receipt.status is DeliveryStatus.FAILED_PERMANENT
    assert receipt.detail == "recipient refused: 550 5.1.1 <nobody@client.test>: no such user"
    assert after.ok  # the connection stays usable
    assert smtp_server.connections == 1


@pytest.mark.asyncio
async def test_greylisting_is_a_transient_failure(smtp_server: SmtpServer) -> None:
    smtp_server.refuse("grey@client.test", "451 4.7.1 greylisted, try again later")

    async with SmtpChannel.from_url(smtp_server.url()) as channel:
        receipt = await channel.send(email(1, to="grey@client.test"))

    assert receipt.status is DeliveryStatus.FAILED_TRANSIENT
    assert receipt.detail == "recipient refused: 451 4.7.1 greylisted, try again later"
    assert smtp_server.messages == []


@pytest.mark.asyncio
async def test_a_closed_port_is_a_transient_failure() -> None:
    # Given a port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = SmtpConfig("127.0.0.1", port, from_addr="news@acme.test", timeout=2)

    async with SmtpChannel(config) as channel:
        receipt = await channel.send(email(1))

    assert receipt.status is DeliveryStatus.FAILED_TRANSIENT
    assert receipt.detail.startswith(f"cannot connect to SMTP server 127.0.0.1:{port}")


@pytest.mark.asyncio
async def test_an_invalid_address_is_a_permanent_failure(smtp_server: SmtpServer) -> None:
    async with SmtpChannel.from_url(smtp_server.url()) as channel:
        receipt = await channel.send(email(1, to="lin at client.test"))

    assert receipt.status is DeliveryStatus.FAILED_PERMANENT
    assert receipt.detail == "invalid email address 'lin at client.test'"
    assert smtp_server.connections == 0


@pytest.mark.asyncio
async def test_auth_over_tls(smtp_tls_server: SmtpServer, tls_files: TlsFiles) -> None:
    # Given a TLS server with AUTH and a client that trusts its certificate
    url = smtp_tls_server.url(f"{USER}:s3cret%20pass@", f"cafile={tls_files.cert}")

    # When a message is sent
    async with SmtpChannel.from_url(url) as channel:
        receipt = await channel.send(email(1))

    # Then it arrives
    assert receipt.ok, receipt.detail
    assert len(smtp_tls_server.messages) == 1
    assert PASSWORD == "s3cret pass"


@pytest.mark.asyncio
async def test_a_wrong_password_is_a_config_error(
    smtp_tls_server: SmtpServer, tls_files: TlsFiles
) -> None:
    url = smtp_tls_server.url(f"{USER}:wrong@", f"cafile={tls_files.cert}")

    async with SmtpChannel.from_url(url) as channel:
        with pytest.raises(ChannelConfigError, match="refused the credentials of 'ada': 535"):
            await channel.send(email(1))

    assert smtp_tls_server.messages == []


@pytest.mark.asyncio
async def test_an_untrusted_certificate_is_a_config_error(smtp_tls_server: SmtpServer) -> None:
    url = smtp_tls_server.url(f"{USER}:s3cret%20pass@")

    async with SmtpChannel.from_url(url) as channel:
        with pytest.raises(ChannelConfigError, match=r"TLS with SMTP server 127\.0\.0\.1"):
            await channel.send(email(1))


@pytest.mark.asyncio
async def test_verify_false_accepts_a_self_signed_certificate(smtp_tls_server: SmtpServer) -> None:
    url = smtp_tls_server.url(f"{USER}:s3cret%20pass@", "verify=false")

    async with SmtpChannel.from_url(url) as channel:
        assert (await channel.send(email(1))).ok


@pytest.mark.asyncio
async def test_send_after_aclose_is_an_error(smtp_server: SmtpServer) -> None:
    channel = SmtpChannel.from_url(smtp_server.url())
    await channel.aclose()

    with pytest.raises(RuntimeError, match="after aclose"):
        await channel.send(email(1))


@pytest.mark.asyncio
async def test_a_message_for_another_channel_is_refused(smtp_server: SmtpServer) -> None:
    async with SmtpChannel.from_url(smtp_server.url()) as channel:
        with pytest.raises(ValueError, match="SmtpChannel sends 'email' messages; got 'sms'"):
            await channel.send(OutboundMessage("sms", "+8613912345678", "m-1", text="hi"))


def test_a_channel_stays_in_its_first_event_loop() -> None:
    # Given a channel used in one event loop (a closed port: nothing is pooled)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = SmtpChannel(SmtpConfig("127.0.0.1", port, from_addr="news@acme.test"))
    assert not asyncio.run(channel.send(email(1))).ok

    # When another loop uses it, Then the error says what to do
    with pytest.raises(RuntimeError, match="create one channel per event loop"):
        asyncio.run(channel.send(email(2)))


def test_a_channel_without_sender_is_a_config_error() -> None:
    with pytest.raises(ChannelConfigError, match=r"add \?from=news@example.com"):
        SmtpChannel.from_url("smtp://127.0.0.1:2525")
