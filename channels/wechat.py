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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from channels._http import DEFAULT_TIMEOUT, HttpChannel, dumps
from channels.base import OutboundMessage, Receipt, require_channel
from channels.errors import ChannelConfigError

_TRANSIENT = {-1, 45009}
_BAD_TOKEN = {40001, 40014, 42001}


class WechatChannel(HttpChannel):
    """Sends WeChat template messages to an openid by POSTing to `endpoint`."""

    name = "WeChat"

    def __init__(
        self,
        endpoint: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(timeout=timeout, token=token, client=client)
        self.endpoint = endpoint

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
        return await self._post(self.endpoint, content, {"Idempotency-Key": message.message_id})

    def _accepted(self, answer: Mapping[str, Any], response: httpx.Response) -> Receipt:
        code = answer.get("errcode", 0)
        if code == 0:
            return super()._accepted(answer, response)
        reason = f"WeChat error {code}: {answer.get('errmsg', '')}".rstrip(": ")
        if code in _BAD_TOKEN:
            raise ChannelConfigError(f"WeChat refused the access token: {reason}")
        if code in _TRANSIENT:
            return Receipt.transient(reason)
        return Receipt.permanent(reason)


def _field(value: object) -> object:
    return {"value": value} if isinstance(value, str | int | float) else value
