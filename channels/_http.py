"""What the HTTP channels share: one httpx client, a JSON POST, answers read as receipts.

    2xx                     sent; provider_id from the JSON answer's "id" (or "msgid")
    408, 429, 5xx           failed_transient (with Retry-After, when given)
    no connection           failed_transient (connect, pool or write failed: not wholly sent)
    no answer               unknown (read timeout, connection lost after the request was sent)
    401, 403                ChannelConfigError: our credentials, not the message
    other 4xx, 3xx          failed_permanent, the reason from {"error": code, "message": text}

A timeout after the request went out may hide a success, so it is `unknown`:
never sent again on its own (the provider may also dedupe on the Idempotency-Key).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from channels.base import ClosingContext, Receipt
from channels.errors import ChannelConfigError

DEFAULT_TIMEOUT = 10.0
_UNANSWERED = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)
"""Failures once the whole request was written: the provider may have acted on it."""


class HttpChannel(ClosingContext):
    """Base of the channels that POST JSON to a provider."""

    name = "http"
    """What the provider is called in messages: `SMS`, `WeChat`, `webhook`."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        token: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.timeout = timeout
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), follow_redirects=False
        )
        self._closed = False

    async def aclose(self) -> None:
        """Close the HTTP client, unless it was passed in (then its owner closes it)."""
        self._closed = True
        if self._own_client:
            await self._client.aclose()

    async def _post(
        self, url: str, content: bytes, headers: Mapping[str, str], shown: str | None = None
    ) -> Receipt:
        """POST `content` to `url`; `shown` names the URL in messages (without its secrets)."""
        if self._closed:
            raise RuntimeError(f"{type(self).__name__}.send() after aclose()")
        self._check_loop()
        headers = {"Content-Type": "application/json", **self._auth, **headers}
        shown = shown or url
        try:
            response = await self._client.post(url, content=content, headers=headers)
        except _UNANSWERED as e:
            what = f"{self.name} provider at {shown} did not answer"
            if isinstance(e, httpx.TimeoutException):
                what = f"{what} within {self.timeout:g} s"
            return Receipt.unknown(
                f"{what} ({type(e).__name__}): the request was sent and may have been "
                "carried out; not sent again"
            )
        except httpx.TimeoutException as e:
            kind = type(e).__name__
            return Receipt.transient(
                f"{self.name} provider at {shown} timed out after {self.timeout:g} s ({kind})"
            )
        except httpx.TransportError as e:
            return Receipt.transient(f"cannot reach {self.name} provider at {shown}: {e!r}")
        return self._receipt(response, shown)

    def _receipt(self, response: httpx.Response, shown: str) -> Receipt:
        answer = json_object(response)
        status = response.status_code
        if response.is_success:
            return self._accepted(answer, response)
        reason = error_reason(answer, response)
        if status in (401, 403):
            raise ChannelConfigError(
                f"{self.name} provider at {shown} refused our credentials: {reason}"
            )
        if status in (408, 429) or status >= 500:
            return Receipt.transient(
                f"{self.name} provider unavailable: {reason}", retry_after(response)
            )
        return Receipt.permanent(reason)

    def _accepted(self, answer: Mapping[str, Any], response: httpx.Response) -> Receipt:
        provider_id = answer.get("id", answer.get("msgid"))
        return Receipt.sent(
            None if provider_id is None else str(provider_id), f"HTTP {response.status_code}"
        )


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or `{}` when it is empty, not JSON, or not an object."""
    try:
        answer = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return answer if isinstance(answer, dict) else {}


def error_reason(answer: Mapping[str, Any], response: httpx.Response) -> str:
    """`invalid number: +86 123 is too short` from {"error", "message"}, else the HTTP status."""
    code = answer.get("error")
    message = answer.get("message")
    if isinstance(code, str) and code:
        words = code.replace("_", " ").replace("-", " ")
        return f"{words}: {message}" if message else words
    text = str(message) if message else response.text.strip()[:200]
    head = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    return f"{head}: {text}" if text else head


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a numeric `Retry-After` header, if any."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def dumps(payload: object) -> bytes:
    """Compact UTF-8 JSON; `TypeError` or `ValueError` for what JSON cannot hold."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
