"""A fake WeChat API under uvicorn: access tokens and template messages, with WeChat's errors.

    GET  /cgi-bin/token?grant_type=client_credential&appid=&secret=
    POST /cgi-bin/stable_token {grant_type, appid, secret, force_refresh}
    POST /cgi-bin/message/template/send?access_token=...

As documented: a wrong appid is 40013, a wrong secret 40125 (the token
endpoints answer HTTP 200 with an errcode). ``cgi-bin/token`` makes a new
token on every call and ends the ones before; ``stable_token`` gives the
current one while it lasts, a new one with ``force_refresh``. Sending with a
token that was ended is 40001, with one past its time 42001, without one
41001; ``OPENID_UNSUBSCRIBED`` is 43004 and an openid that does not start
with ``o`` 40003. Each token request takes `delay` seconds, so that
concurrent refreshes overlap, and is counted.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.live import serving

APPID, SECRET = "wx0123456789abcdef", "app-secret-0123"
OPENID_UNSUBSCRIBED = "o-unsubscribed"


@dataclass
class WechatApi:
    """The fake's state: tokens given out, and every request it answered."""

    delay: float = 0.2
    expires_in: int = 7200
    token_requests: int = 0
    token_requests_forced: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    """The errcode of each refused template send."""
    base_url: str = ""
    _tokens: dict[str, float] = field(default_factory=dict)
    """Live tokens and when each ends (Unix time)."""
    _current: str | None = None
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, *, replace: bool) -> tuple[str, int]:
        with self._lock:
            if replace or self._current is None or self._tokens[self._current] < time.time():
                if replace:
                    self._tokens.clear()
                self._current = f"TOKEN-{next(self._numbers)}"
                self._tokens[self._current] = time.time() + self.expires_in
            return self._current, int(self._tokens[self._current] - time.time())

    def revoke(self) -> None:
        """End every token now, as a token fetched elsewhere (cgi-bin/token) would."""
        with self._lock:
            self._tokens.clear()
            self._current = None

    def expire(self) -> None:
        """Make every token reach its end now (42001 from here on)."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, time.time() - 1)

    def check(self, token: str | None) -> int:
        with self._lock:
            if not token:
                return 41001
            if token not in self._tokens:
                return 40001
            return 42001 if self._tokens[token] < time.time() else 0


def _error(code: int, message: str) -> JSONResponse:
    return JSONResponse({"errcode": code, "errmsg": message})


def wechat_app(api: WechatApi) -> Starlette:
    async def credentials(appid: object, secret: object) -> JSONResponse | None:
        api.token_requests += 1
        await asyncio.sleep(api.delay)
        if appid != APPID:
            return _error(40013, "invalid appid")
        if secret != SECRET:
            return _error(40125, "invalid appsecret")
        return None

    async def token(request: Request) -> JSONResponse:
        params = request.query_params
        if params.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        refused = await credentials(params.get("appid"), params.get("secret"))
        if refused is not None:
            return refused
        value, seconds = api.issue(replace=True)
        return JSONResponse({"access_token": value, "expires_in": seconds})

    async def stable_token(request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        refused = await credentials(body.get("appid"), body.get("secret"))
        if refused is not None:
            return refused
        force = body.get("force_refresh") is True
        api.token_requests_forced += force
        value, seconds = api.issue(replace=force)
        return JSONResponse({"access_token": value, "expires_in": seconds})

    async def send(request: Request) -> JSONResponse:
        code = api.check(request.query_params.get("access_token"))
        body = await request.json()
        if code == 0 and body.get("touser") == OPENID_UNSUBSCRIBED:
            code = 43004
        elif code == 0 and not str(body.get("touser", "")).startswith("o"):
            code = 40003
        if code:
            api.refused.append(code)
            words = {
                40001: "invalid credential, access_token is invalid or not latest",
                40003: "invalid openid",
                41001: "access_token missing",
                42001: "access_token expired",
                43004: "require subscribe",
            }
            return _error(code, words[code])
        api.sent.append(body)
        return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": 1000 + len(api.sent)})

    return Starlette(
        routes=[
            Route("/cgi-bin/token", token, methods=["GET"]),
            Route("/cgi-bin/stable_token", stable_token, methods=["POST"]),
            Route("/cgi-bin/message/template/send", send, methods=["POST"]),
        ]
    )


@contextmanager
def running_wechat_api(**settings: Any) -> Iterator[WechatApi]:
    """The fake WeChat API under uvicorn on 127.0.0.1, until the block ends."""
    api = WechatApi(**settings)
    with serving(wechat_app(api), "wechat-api") as url:
        api.base_url = url
        yield api
