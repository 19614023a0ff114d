"""WeChat access tokens: fetched from appid and secret, as the official API hands them out.

    POST https://api.weixin.qq.com/cgi-bin/stable_token            (the default)
    {"grant_type": "client_credential", "appid": "...", "secret": "...", "force_refresh": false}
    GET  https://api.weixin.qq.com/cgi-bin/token?grant_type=client_credential&appid=...&secret=...
    200 {"access_token": "...", "expires_in": 7200}
    200 {"errcode": 40013, "errmsg": "invalid appid"}

`stable_token` hands every caller the same token until it nears its end;
`force_refresh` (used after WeChat refused a token) makes a new one, the old
one still valid for five minutes. `cgi-bin/token` makes a new token on every
call and ends the one before: with several workers, a fetch must be shared,
never repeated (`AccessTokens` says how a cache does that; `MemoryTokens` is
the one-process cache, the engine keeps one in its database).

Answers become: a token; `ChannelConfigError` for refused credentials (40013
invalid appid, 40125 invalid secret, 40164 our IP not on the allow-list, ...);
`TransientChannelError` for busy (-1), rate limits (45009, 45011), HTTP 5xx
and a provider that cannot be reached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from channels._http import DEFAULT_TIMEOUT, json_object
from channels.errors import ChannelConfigError, TransientChannelError

__all__ = ["AccessToken", "AccessTokens", "MemoryTokens", "TokenEndpoint"]

DEFAULT_TOKEN_URL = "https://api.weixin.qq.com/cgi-bin/stable_token"
REFRESH_MARGIN = 300.0
"""Seconds before its end a token is replaced: WeChat's own overlap between old and new."""
_TRANSIENT = {-1, 45009, 45011}


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A token and the Unix time it ends."""

    value: str
    expires_at: float

    def fresh(self, now: float, margin: float = REFRESH_MARGIN) -> bool:
        """Whether it is still good for `margin` seconds at `now`."""
        return now + margin < self.expires_at


class AccessTokens(Protocol):
    """A cache of one app's token; `WechatChannel` asks it before each send."""

    async def token(self) -> str:
        """A token that is not near its end, fetched only when the cache has none."""
        ...

    async def refresh(self, rejected: str) -> str:
        """A token other than `rejected` (which WeChat refused): the one another caller
        already fetched since, or a new one; never two fetches at once."""
        ...

    def close(self) -> None:
        """Release the HTTP client; the channel given this cache calls it as it closes."""
        ...


@dataclass(frozen=True, slots=True)
class TokenEndpoint:
    """Where and as whom to fetch tokens."""

    appid: str
    secret: str
    url: str = DEFAULT_TOKEN_URL
    """`.../cgi-bin/stable_token` (POST, JSON) or `.../cgi-bin/token` (GET)."""
    timeout: float = DEFAULT_TIMEOUT

    @property
    def stable(self) -> bool:
        return not httpx.URL(self.url).path.rstrip("/").endswith("/cgi-bin/token")

    def fetch(
        self, client: httpx.Client, *, force: bool = False, now: Callable[[], float] = time.time
    ) -> AccessToken:
        """A new token (blocking: call it from a thread); `force` after a refused one."""
        try:
            if self.stable:
                body: dict[str, object] = {"grant_type": "client_credential"}
                body |= {"appid": self.appid, "secret": self.secret, "force_refresh": force}
                response = client.post(self.url, json=body, timeout=self.timeout)
            else:
                params = {"grant_type": "client_credential", "appid": self.appid}
                params["secret"] = self.secret
                response = client.get(self.url, params=params, timeout=self.timeout)
        except httpx.TransportError as e:
            raise TransientChannelError(
                f"cannot fetch a WeChat access token from {self.url}: {e!r}"
            ) from e
        return self._token(response, now())

    def _token(self, response: httpx.Response, now: float) -> AccessToken:
        where = f"the WeChat token endpoint {self.url}"
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientChannelError(f"{where} answered HTTP {response.status_code}")
        answer = json_object(response)
        code = answer.get("errcode", 0)
        if code:
            reason = f"WeChat error {code}: {answer.get('errmsg', '')}".rstrip(": ")
            if code in _TRANSIENT:
                raise TransientChannelError(f"{where} is busy: {reason}")
            raise ChannelConfigError(
                f"{where} refused appid {self.appid}: {reason} "
                "(check NURTURE_WECHAT_APPID, NURTURE_WECHAT_SECRET and the IP allow-list)"
            )
        token, expires = answer.get("access_token"), answer.get("expires_in")
        if not response.is_success or not isinstance(token, str) or not token:
            raise ChannelConfigError(
                f"{where} gave no access_token (HTTP {response.status_code}): "
                f"{response.text.strip()[:200]}"
            )
        seconds = float(expires) if isinstance(expires, int | float) else 7200.0
        return AccessToken(token, now + seconds)


class MemoryTokens:
    """`AccessTokens` for one process: the token in memory, one fetch at a time."""

    def __init__(
        self,
        endpoint: TokenEndpoint,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint = endpoint
        self._client = client or httpx.Client(follow_redirects=False)
        self._clock = clock
        self._current: AccessToken | None = None
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        current = self._current
        if current is not None and current.fresh(self._clock()):
            return current.value
        return await self._fetch(None)

    async def refresh(self, rejected: str) -> str:
        return await self._fetch(rejected)

    async def _fetch(self, rejected: str | None) -> str:
        async with self._lock:
            current = self._current
            if current is not None and current.value != rejected and current.fresh(self._clock()):
                return current.value  # fetched by another send while this one waited
            self._current = await asyncio.to_thread(self._obtain, rejected)
            return self._current.value

    def _obtain(self, rejected: str | None) -> AccessToken:
        """A new token (in a thread); a cache shared beyond this process overrides it."""
        return self.endpoint.fetch(self._client, force=rejected is not None, now=self._clock)

    def close(self) -> None:
        self._client.close()
