"""SMS through an HTTP provider that speaks this small protocol (ours):

    POST <endpoint>                    Authorization: Bearer <token>   (when configured)
    {"to": "+8613912345678", "body": "text", "message_id": "m-42"}
                                       Idempotency-Key: m-42
    200 {"id": "provider-id"}          accepted
    4xx {"error": "invalid_number", "message": "..."}   refused for good
    408, 429, 5xx                      busy: try again later

Providers' own answers, passed on by a relay (Aliyun, Tencent Cloud, Twilio),
are read too: rate limits, invalid numbers, opted-out numbers and account
problems each mean what `channels.sms_answers` says, HTTP 200 or not.

A provider should treat `message_id` as an idempotency key. A request that
went out but got no answer (a read timeout) is reported `unknown` and never
sent again on its own; a connection that could not be made is retried.
"""

from __future__ import annotations

import httpx

from channels._http import DEFAULT_TIMEOUT, HttpChannel, dumps, json_object, retry_after
from channels.base import DeliveryStatus, OutboundMessage, Receipt, require_channel
from channels.sms_answers import classify


class SmsChannel(HttpChannel):
    """Sends text messages by POSTing JSON to an SMS provider's `endpoint`."""

    name = "SMS"

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
        """POST {to, body, message_id}; the text is `body` when a string, else `text`."""
        require_channel(message, "sms", "SmsChannel")
        text = message.body if isinstance(message.body, str) else message.text
        if not text.strip():
            return Receipt.permanent(f"sms {message.message_id} to {message.to} has no text")
        payload = {"to": message.to, "body": text, "message_id": message.message_id}
        return await self._post(
            self.endpoint, dumps(payload), {"Idempotency-Key": message.message_id}
        )

    def _receipt(self, response: httpx.Response, shown: str) -> Receipt:
        """The HTTP status's receipt, unless the answer holds a provider code we know."""
        known = classify(json_object(response), f"the SMS provider at {shown}")
        if known is None:
            return super()._receipt(response, shown)
        waited = retry_after(response)
        if known.status is DeliveryStatus.FAILED_TRANSIENT and waited is not None:
            return Receipt.transient(known.detail, waited)  # the provider's own wait wins
        return known
