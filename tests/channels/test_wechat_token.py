"""WeChat itself: access tokens from appid and secret, refreshed before their end and once
when refused, against a fake WeChat API under uvicorn (`tests.channels.wechat_api`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from channels import (
    ChannelConfigError,
    DeliveryStatus,
    MemoryTokens,
    OutboundMessage,
    TokenEndpoint,
    WechatChannel,
)
from tests.channels.wechat_api import APPID, OPENID_UNSUBSCRIBED, SECRET, WechatApi
from tests.channels.wechat_api import running_wechat_api as running


@pytest.fixture
def api() -> Iterator[WechatApi]:
    with running(delay=0.0) as api:
        yield api


def card(n: int = 1, to: str = "o-lin") -> OutboundMessage:
    body = {"template_id": "T1", "data": {"first": "Hello", "keyword1": f"#{n}"}}
    return OutboundMessage("wechat", to, f"m-{n}", body=body)


def channel(api: WechatApi, path: str = "stable_token", **kwargs: object) -> WechatChannel:
    endpoint = TokenEndpoint(
        APPID, str(kwargs.pop("secret", SECRET)), f"{api.base_url}/cgi-bin/{path}"
    )
    tokens = MemoryTokens(endpoint, **kwargs)  # type: ignore[arg-type]
    return WechatChannel(tokens=tokens, api_url=api.base_url)


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["stable_token", "token"])
async def test_one_token_serves_every_send_until_it_nears_its_end(
    api: WechatApi, path: str
) -> None:
    # Given a channel that calls WeChat with its appid and secret
    async with channel(api, path) as wechat:
        # When three messages go out
        receipts = [await wechat.send(card(n)) for n in (1, 2, 3)]

    # Then one token was fetched, and all three were sent as template messages
    assert [r.status for r in receipts] == [DeliveryStatus.SENT] * 3
    assert [r.provider_id for r in receipts] == ["1001", "1002", "1003"]
    assert api.token_requests == 1
    assert api.sent[0] == {
        "touser": "o-lin",
        "template_id": "T1",
        "data": {"first": {"value": "Hello"}, "keyword1": {"value": "#1"}},
        "client_msg_id": "m-1",
    }


@pytest.mark.asyncio
async def test_a_token_near_its_end_is_replaced_before_wechat_refuses_it(api: WechatApi) -> None:
    # Given a clock we move, and a token that lasts 7200 s
    now = [1_000_000.0]
    async with channel(api, clock=lambda: now[0]) as wechat:
        await wechat.send(card(1))
        # When 6,000 s pass (more than five minutes left), then 6,950 s (less)
        now[0] += 6000
        await wechat.send(card(2))
        assert api.token_requests == 1
        now[0] += 950
        receipt = await wechat.send(card(3))

    # Then the second token was fetched ahead of time, and nothing was refused
    assert receipt.ok
    assert api.token_requests == 2
    assert api.refused == []


@pytest.mark.asyncio
@pytest.mark.parametrize(("end", "code"), [("revoke", 40001), ("expire", 42001)])
async def test_a_refused_token_is_refreshed_once_and_the_message_sent(
    api: WechatApi, end: str, code: int
) -> None:
    async with channel(api) as wechat:
        await wechat.send(card(1))
        # Given WeChat ended the token (another fetch replaced it, or its time ran out)
        getattr(api, end)()
        # When the next message goes out
        receipt = await wechat.send(card(2))

    # Then it was refused once, a new token forced, and the message sent with it
    assert receipt.ok, receipt.detail
    assert api.refused == [code]
    assert (api.token_requests, api.token_requests_forced) == (2, 1)
    assert len(api.sent) == 2


@pytest.mark.asyncio
async def test_a_token_refused_again_after_a_refresh_is_a_config_error(api: WechatApi) -> None:
    # Given WeChat refuses every token (as when another system keeps fetching with cgi-bin/token)
    api.check = lambda token: 40001  # type: ignore[method-assign]
    async with channel(api) as wechat:
        with pytest.raises(ChannelConfigError, match="refused the access token") as caught:
            await wechat.send(card(1))
    # Then it was tried twice only, and the token never appears in the message
    assert api.refused == [40001, 40001]
    assert api.token_requests == 2
    assert "TOKEN-" not in str(caught.value)


@pytest.mark.asyncio
async def test_a_wrong_secret_is_a_config_error_naming_the_appid(api: WechatApi) -> None:
    async with channel(api, secret="wrong") as wechat:
        with pytest.raises(ChannelConfigError, match=rf"refused appid {APPID}: WeChat error 40125"):
            await wechat.send(card(1))
    assert api.sent == []


@pytest.mark.asyncio
async def test_a_token_endpoint_out_of_reach_is_a_transient_failure(api: WechatApi) -> None:
    endpoint = TokenEndpoint(APPID, SECRET, "http://127.0.0.1:9/cgi-bin/stable_token")
    async with WechatChannel(tokens=MemoryTokens(endpoint), api_url=api.base_url) as wechat:
        receipt = await wechat.send(card(1))
    assert receipt.status is DeliveryStatus.FAILED_TRANSIENT
    assert "cannot fetch a WeChat access token" in receipt.detail


@pytest.mark.asyncio
async def test_an_unsubscribed_follower_is_a_permanent_failure(api: WechatApi) -> None:
    async with channel(api) as wechat:
        receipt = await wechat.send(card(1, OPENID_UNSUBSCRIBED))
    assert receipt.status is DeliveryStatus.FAILED_PERMANENT
    assert receipt.detail == "WeChat error 43004: require subscribe"
    assert api.token_requests == 1


def test_a_channel_needs_a_relay_or_a_token_cache() -> None:
    with pytest.raises(ValueError, match="a relay endpoint or an access-token cache"):
        WechatChannel()
