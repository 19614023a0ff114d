"""SMS, WeChat and webhook channels against a real HTTP provider (Starlette under uvicorn)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from channels import (
    ChannelConfigError,
    DeliveryStatus,
    OutboundMessage,
    Receipt,
    SmsChannel,
    WebhookChannel,
    WechatChannel,
    sign_webhook,
    verify_webhook,
)
from tests.channels.provider import SECRET, SLOW, TOKEN, Provider


def sms(to: str = "+8613912345678", text: str = "Your code is 1234") -> OutboundMessage:
    return OutboundMessage("sms", to, "s-1", text=text)


# SMS


@pytest.mark.asyncio
async def test_sms_is_sent_with_our_protocol(provider: Provider) -> None:
    # Given an SMS channel with the provider's token
    async with SmsChannel(f"{provider.base_url}/sms", token=TOKEN) as channel:
        # When a message is sent
        receipt = await channel.send(sms())

    # Then the provider got {to, body, message_id} and its id came back
    assert receipt.status is DeliveryStatus.SENT
    assert receipt.provider_id is not None and receipt.provider_id.startswith("sms-")
    [request] = provider.requests
    assert request.json == {
        "to": "+8613912345678",
        "body": "Your code is 1234",
        "message_id": "s-1",
    }
    assert request.headers["idempotency-key"] == "s-1"
    assert request.headers["content-type"] == "application/json"


@pytest.mark.asyncio
async def test_a_string_body_is_the_sms_text(provider: Provider) -> None:
    message = OutboundMessage("sms", "+8613912345678", "s-2", text="ignored", body="短信正文")

    async with SmsChannel(f"{provider.base_url}/sms", token=TOKEN) as channel:
        assert (await channel.send(message)).ok

    assert provider.requests[0].json["body"] == "短信正文"


@pytest.mark.asyncio
async def test_an_invalid_number_is_a_permanent_failure(provider: Provider) -> None:
    async with SmsChannel(f"{provider.base_url}/sms", token=TOKEN) as channel:
        bare = await channel.send(sms("13800000000"))
        explained = await channel.send(sms("12345"))

    assert bare == Receipt.permanent("invalid number")
    assert explained == Receipt.permanent("invalid number: 12345 is not E.164")


@pytest.mark.asyncio
async def test_provider_unavailable_is_transient_with_retry_after(provider: Provider) -> None:
    async with SmsChannel(f"{provider.base_url}/sms", token=TOKEN) as channel:
        receipt = await channel.send(sms("+15550000503"))

    assert receipt == Receipt.transient("SMS provider unavailable: unavailable", retry_after=7.0)


@pytest.mark.asyncio
async def test_rate_limited_is_transient(provider: Provider) -> None:
    async with SmsChannel(f"{provider.base_url}/sms", token=TOKEN) as channel:
        receipt = await channel.send(sms("+15550000429"))

    assert receipt.status is DeliveryStatus.FAILED_TRANSIENT
    assert receipt.detail == "SMS provider unavailable: rate limited: slow down"


@pytest.mark.asyncio
async def test_a_provider_that_does_not_answer_in_time_leaves_the_message_unknown(
    provider: Provider,
) -> None:
    # Given a channel that waits 0.2 s, and a provider that takes the request but answers later
    async with SmsChannel(f"{provider.base_url}/sms", token=TOKEN, timeout=0.2) as channel:
        started = time.monotonic()
        receipt = await channel.send(sms("+15550000000"))

    # Then the send gives up in time: the request went out, so it may have been carried out
    assert time.monotonic() - started < SLOW
    assert receipt.status is DeliveryStatus.UNKNOWN
    assert "did not answer within 0.2 s (ReadTimeout)" in receipt.detail
    assert len(provider.requests) == 1


@pytest.mark.asyncio
async def test_a_refused_token_is_a_config_error(provider: Provider) -> None:
    async with SmsChannel(f"{provider.base_url}/sms", token="wrong") as channel:
        with pytest.raises(ChannelConfigError, match="refused our credentials: unauthorized"):
            await channel.send(sms())


@pytest.mark.asyncio
async def test_a_closed_port_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async with SmsChannel(f"http://127.0.0.1:{port}/sms") as channel:
        receipt = await channel.send(sms())

    assert receipt.status is DeliveryStatus.FAILED_TRANSIENT
    assert receipt.detail.startswith(f"cannot reach SMS provider at http://127.0.0.1:{port}/sms")


@pytest.mark.asyncio
async def test_an_empty_sms_is_refused_without_a_request(provider: Provider) -> None:
    async with SmsChannel(f"{provider.base_url}/sms", token=TOKEN) as channel:
        receipt = await channel.send(sms(text="  "))

    assert receipt == Receipt.permanent("sms s-1 to +8613912345678 has no text")
    assert provider.requests == []


@pytest.mark.asyncio
async def test_a_client_passed_in_stays_open(provider: Provider) -> None:
    async with httpx.AsyncClient() as client:
        channel = SmsChannel(f"{provider.base_url}/sms", token=TOKEN, client=client)
        assert (await channel.send(sms())).ok
        await channel.aclose()

        assert not client.is_closed
        with pytest.raises(RuntimeError, match="after aclose"):
            await channel.send(sms())


# WeChat


def card(openid: str = "o-follower", **body: object) -> OutboundMessage:
    payload = {"template_id": "TPL-1", "data": {"first": "你好, Lin", "keyword1": {"value": "3"}}}
    return OutboundMessage("wechat", openid, "w-1", body=payload | body)


@pytest.mark.asyncio
async def test_a_wechat_template_message(provider: Provider) -> None:
    url = f"{provider.base_url}/wechat?access_token={TOKEN}"
    async with WechatChannel(url) as channel:
        receipt = await channel.send(card(url="https://acme.test/c/1"))

    assert receipt.ok and receipt.provider_id == "200228332"
    assert provider.requests[0].json == {
        "touser": "o-follower",
        "template_id": "TPL-1",
        "data": {"first": {"value": "你好, Lin"}, "keyword1": {"value": "3"}},
        "url": "https://acme.test/c/1",
        "client_msg_id": "w-1",
    }


@pytest.mark.asyncio
async def test_wechat_errcodes(provider: Provider) -> None:
    url = f"{provider.base_url}/wechat?access_token={TOKEN}"
    async with WechatChannel(url) as channel:
        unfollowed = await channel.send(card("o-unfollowed"))
        busy = await channel.send(card("o-busy"))

    assert unfollowed == Receipt.permanent("WeChat error 43004: require subscribe")
    assert busy.status is DeliveryStatus.FAILED_TRANSIENT
    assert busy.detail.startswith("WeChat error 45009")


@pytest.mark.asyncio
async def test_a_bad_wechat_access_token_is_a_config_error(provider: Provider) -> None:
    async with WechatChannel(f"{provider.base_url}/wechat?access_token=old") as channel:
        with pytest.raises(ChannelConfigError, match="WeChat error 40001: invalid credential"):
            await channel.send(card())


@pytest.mark.asyncio
async def test_a_wechat_body_without_template_is_permanent(provider: Provider) -> None:
    message = OutboundMessage("wechat", "o-follower", "w-2", body={"data": {}})

    async with WechatChannel(f"{provider.base_url}/wechat") as channel:
        receipt = await channel.send(message)

    assert receipt == Receipt.permanent(
        "wechat message w-2 needs a body with a template_id and data"
    )
    assert provider.requests == []


# Webhooks


def hook(url: str, body: object = None) -> OutboundMessage:
    payload = {"event": "mql", "lead": {"email": "lin@client.test", "score": 72}}
    return OutboundMessage("webhook", url, "h-1", body=payload if body is None else body)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_a_signed_webhook_is_verified_by_the_receiver(provider: Provider) -> None:
    # Given a webhook channel with the receiver's secret and a bearer token
    async with WebhookChannel(secret=SECRET, token="crm-token") as channel:
        # When a payload is posted
        receipt = await channel.send(hook(f"{provider.base_url}/hook/crm"))

    # Then the receiver checked the signature and accepted it
    assert receipt.ok and receipt.provider_id is not None
    [request] = provider.requests
    assert request.json == {"event": "mql", "lead": {"email": "lin@client.test", "score": 72}}
    assert request.headers["authorization"] == "Bearer crm-token"
    assert verify_webhook(
        SECRET, request.body, request.headers["x-nurture-signature"], now=time.time()
    )


@pytest.mark.asyncio
async def test_a_webhook_signed_with_the_wrong_secret_is_refused(provider: Provider) -> None:
    async with WebhookChannel(secret="not-the-secret") as channel:
        receipt = await channel.send(hook(f"{provider.base_url}/hook/crm"))

    assert receipt == Receipt.permanent("bad signature")


@pytest.mark.asyncio
async def test_a_deleted_webhook_is_permanent(provider: Provider) -> None:
    async with WebhookChannel() as channel:
        receipt = await channel.send(hook(f"{provider.base_url}/hook/gone"))

    assert receipt == Receipt.permanent("HTTP 410 Gone: this hook was deleted")


@pytest.mark.asyncio
async def test_a_json_text_body_is_sent_as_written(provider: Provider) -> None:
    text = '{"event": "mql", "note": "渲染的模板"}'

    async with WebhookChannel() as channel:
        assert (await channel.send(hook(f"{provider.base_url}/hook/crm", text))).ok

    assert provider.requests[0].body == text.encode()


@pytest.mark.parametrize(
    ("to", "body", "detail"),
    [
        ("ftp://crm.test/hook", {"a": 1}, "invalid webhook URL 'ftp://crm.test/hook'"),
        ("not a url", {"a": 1}, "invalid webhook URL 'not a url'"),
        ("http://crm.test/hook", "{not json", "webhook h-1 body is not JSON"),
        ("http://crm.test/hook", {"when": object()}, "webhook h-1 body is not JSON"),
    ],
)
@pytest.mark.asyncio
async def test_a_webhook_that_cannot_be_built_is_permanent(
    to: str, body: object, detail: str
) -> None:
    async with WebhookChannel() as channel:
        receipt = await channel.send(hook(to, body))

    assert receipt.status is DeliveryStatus.FAILED_PERMANENT
    assert receipt.detail.startswith(detail)


def test_verify_webhook_refuses_tampering_and_replays() -> None:
    body = b'{"event":"mql"}'
    header = sign_webhook(SECRET, body, 1_700_000_000)

    assert verify_webhook(SECRET, body, header, now=1_700_000_100)
    assert not verify_webhook(SECRET, body + b" ", header, now=1_700_000_100)
    assert not verify_webhook("other", body, header, now=1_700_000_100)
    assert not verify_webhook(SECRET, body, header, now=1_700_000_000 + 301)
    assert not verify_webhook(SECRET, body, "v1=abc", now=1_700_000_000)
