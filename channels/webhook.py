"""Webhooks: POST a JSON body to the URL in `message.to`, optionally signed.

    POST <message.to>
    Content-Type: application/json
    Idempotency-Key: <message_id>
    Authorization: Bearer <token>                       (when a token is set)
    X-Nurture-Signature: t=<unix time>,v1=<hex>         (when a secret is set)

`v1` is HMAC-SHA256 with the shared secret over `<t>.<raw body>`; a receiver
checks it with `verify_webhook()` and refuses old timestamps (replays). The
answer is read like the SMS protocol's: 2xx sent, 408/429/5xx transient, other
4xx permanent, no answer once the request went out unknown (never resent on its own).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping

import httpx

from channels._http import DEFAULT_TIMEOUT, HttpChannel, dumps
from channels.base import OutboundMessage, Receipt, require_channel

SIGNATURE_HEADER = "X-Nurture-Signature"


class WebhookChannel(HttpChannel):
    """POSTs each message's JSON `body` to the URL in its `to`."""

    name = "webhook"

    def __init__(
        self,
        *,
        secret: str | None = None,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(timeout=timeout, token=token, client=client)
        self._secret = secret
        self._clock = clock

    async def send(self, message: OutboundMessage) -> Receipt:
        """POST `body` (a JSON object, or JSON text such as a rendered template) to `to`."""
        require_channel(message, "webhook", "WebhookChannel")
        try:
            url = httpx.URL(message.to)
        except httpx.InvalidURL as e:
            return Receipt.permanent(f"invalid webhook URL {message.to!r}: {e}")
        if url.scheme not in ("http", "https") or not url.host:
            return Receipt.permanent(f"invalid webhook URL {message.to!r}: not http(s)://host/...")
        try:
            content = _content(message.body)
        except (TypeError, ValueError) as e:
            return Receipt.permanent(f"webhook {message.message_id} body is not JSON: {e}")
        headers = {"Idempotency-Key": message.message_id}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign_webhook(self._secret, content, int(self._clock()))
        return await self._post(message.to, content, headers)


def _content(body: Mapping[str, object] | str | None) -> bytes:
    if body is None:
        raise ValueError("there is no body")
    if isinstance(body, str):
        json.loads(body)  # a rendered template: check it, send it as written
        return body.encode()
    return dumps(dict(body))


def sign_webhook(secret: str, body: bytes, timestamp: int) -> str:
    """The `X-Nurture-Signature` value for `body` sent at `timestamp` (Unix seconds)."""
    digest = hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_webhook(
    secret: str, body: bytes, header: str, *, now: float, tolerance: float = 300.0
) -> bool:
    """Whether `header` signs `body` with `secret`, at most `tolerance` seconds from `now`."""
    fields = dict(part.partition("=")[::2] for part in header.split(","))
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign_webhook(secret, body, timestamp)
    return hmac.compare_digest(expected, f"t={fields['t']},v1={fields.get('v1', '')}")
