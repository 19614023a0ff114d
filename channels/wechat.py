"""WeChat template messages, sent as the WeChat API has them:

    POST <endpoint>          (the API's `.../message/template/send?access_token=...`,
                              or a relay that keeps the access token fresh)
    {"touser": "<openid>", "template_id": "...", "url": "https://...",
     "data": {"first": {"value": "Hello"}, "keyword1": {"value": "..."}},
     "client_msg_id": "<message_id>"}
    200 {"errcode": 0, "errmsg": "ok", "msgid": 200228332}

The message `body` holds `template_id`, `data` (plain strings become
`{"value": ...}`) and an optional `url`. WeChat reports errors with HTTP 200 and
a non-zero `errcode`: busy (-1) and rate limits (45009) are transient, a bad
access token (40001, 40014, 42001) is a `ChannelConfigError`, anything else
(43004 not subscribed, 40003 invalid openid, ...) is permanent. A relay may
answer like the SMS protocol instead ({"id"} or {"error", "message"}).

Two ways to reach WeChat:

- a relay: `WechatChannel(endpoint)`, which keeps the token itself;
- the API itself: `WechatChannel(tokens=..., api_url=...)` with an
  `AccessTokens` cache (`channels.wechat_token`). Each send asks the cache for
  the token; when WeChat refuses it (40001, 40014, 42001) the cache is asked
  once for a fresh one (fetched by whichever caller gets there first) and the
  message sent again; refused a second time, it is a `ChannelConfigError`.
  The token is never written into a receipt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from channels._http import DEFAULT_TIMEOUT, HttpChannel, dumps
from channels.base import OutboundMessage, Receipt, require_channel
from channels.errors import ChannelConfigError, TransientChannelError
from channels.wechat_token import AccessTokens

DEFAULT_API_URL = "https://api.weixin.qq.com"
TEMPLATE_SEND = "/cgi-bin/message/template/send"
_TRANSIENT = {-1, 45009}
_BAD_TOKEN = {40001, 40014, 42001}


class _BadToken(ChannelConfigError):
    """Raised when WeChat refuses the access token; with a token cache, worth one refresh."""


class WechatChannel(HttpChannel):
    """Sends WeChat template messages to an openid by POSTing to `endpoint`."""

    name = "WeChat"

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        token: str | None = None,
        tokens: AccessTokens | None = None,
        api_url: str = DEFAULT_API_URL,
        timeout: float = DEFAULT_TIMEOUT,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if (endpoint is None) == (tokens is None):
            raise ValueError("WechatChannel needs a relay endpoint or an access-token cache")
        super().__init__(timeout=timeout, token=token, client=client)
        self.endpoint = endpoint or api_url.rstrip("/") + TEMPLATE_SEND
        """Where messages are POSTed: the relay, or the API's template-send URL."""
        self.tokens = tokens

    async def send(self, message: OutboundMessage) -> Receipt:
        require_channel(message, "wechat", "WechatChannel")
        body = message.body
        if not isinstance(body, Mapping) or not isinstance(body.get("template_id"), str):
            return Receipt.permanent(
                f"wechat message {message.message_id} needs a body with a template_id and data"
            )
        data = body.get("data")
        if not isinstance(data, Mapping):
            return Receipt.permanent(f"wechat message {message.message_id} has no data object")
        payload: dict[str, Any] = {
            "touser": message.to,
            "template_id": body["template_id"],
            "data": {key: _field(value) for key, value in data.items()},
            "client_msg_id": message.message_id,
        }
        if body.get("url"):
            payload["url"] = body["url"]
        try:
            content = dumps(payload)
        except (TypeError, ValueError) as e:
            return Receipt.permanent(f"wechat message {message.message_id} data is not JSON: {e}")
        headers = {"Idempotency-Key": message.message_id}
        if self.tokens is None:
            return await self._post(self.endpoint, content, headers)
        try:
            token = await self.tokens.token()
            try:
                return await self._post_with(token, content, headers)
            except _BadToken:  # expired or replaced: not sent; once more with a fresh token
                return await self._post_with(await self.tokens.refresh(token), content, headers)
        except TransientChannelError as e:  # the token could not be fetched just now
            return Receipt.transient(str(e))

    async def aclose(self) -> None:
        """Close the HTTP client (unless passed in) and the token cache."""
        await super().aclose()
        if self.tokens is not None:
            self.tokens.close()

    async def _post_with(self, token: str, content: bytes, headers: dict[str, str]) -> Receipt:
        url = str(httpx.URL(self.endpoint, params={"access_token": token}))
        return await self._post(url, content, headers, shown=self.endpoint)

    def _accepted(self, answer: Mapping[str, Any], response: httpx.Response) -> Receipt:
        code = answer.get("errcode", 0)
        if code == 0:
            return super()._accepted(answer, response)
        reason = f"WeChat error {code}: {answer.get('errmsg', '')}".rstrip(": ")
        if code in _BAD_TOKEN:
            raise _BadToken(f"WeChat refused the access token: {reason}")
        if code in _TRANSIENT:
            return Receipt.transient(reason)
        return Receipt.permanent(reason)


def _field(value: object) -> object:
    return {"value": value} if isinstance(value, str | int | float) else value
