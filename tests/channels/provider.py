"""A fake SMS, WeChat and webhook provider: a real Starlette app with canned answers.

SMS (`POST /sms`, bearer `TOKEN`): numbers must look like E.164; `+15550000503`
gets 503 with Retry-After, `+15550000429` gets 429, `+15550000000` is answered
after `SLOW` seconds. WeChat (`POST /wechat?access_token=TOKEN`) answers as
WeChat does, with an errcode. Webhooks (`POST /hook/...`) check the signature
when one is sent; `/hook/gone` answers 410.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from channels import verify_webhook

TOKEN = "provider-token"
SECRET = "webhook-secret"
SLOW = 1.0
E164 = re.compile(r"\+[1-9]\d{7,14}")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any


@dataclass
class Provider:
    """What the app received, and where it listens."""

    requests: list[Received] = field(default_factory=list)
    base_url: str = ""
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def reset(self, base_url: str) -> None:
        self.requests.clear()
        self.base_url = base_url

    async def record(self, request: Request) -> Received:
        body = await request.body()
        received = Received(request.url.path, dict(request.headers), body, await request.json())
        self.requests.append(received)
        return received


def provider_app(provider: Provider) -> Starlette:
    async def sms(request: Request) -> Response:
        received = await provider.record(request)
        if received.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"error": "unauthorized", "message": "bad token"}, 401)
        to = received.json["to"]
        if to == "+15550000503":
            return JSONResponse({"error": "unavailable"}, 503, headers={"Retry-After": "7"})
        if to == "+15550000429":
            return JSONResponse({"error": "rate_limited", "message": "slow down"}, 429)
        if to == "+15550000000":
            await asyncio.sleep(SLOW)
        if to == "13800000000":
            return JSONResponse({"error": "invalid_number"}, 400)
        if not E164.fullmatch(to):
            return JSONResponse({"error": "invalid_number", "message": f"{to} is not E.164"}, 400)
        return JSONResponse({"id": f"sms-{next(provider.ids)}"})

    async def wechat(request: Request) -> Response:
        received = await provider.record(request)
        if request.query_params.get("access_token") != TOKEN:
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        openid = received.json["touser"]
        if openid == "o-unfollowed":
            return JSONResponse({"errcode": 43004, "errmsg": "require subscribe"})
        if openid == "o-busy":
            return JSONResponse({"errcode": 45009, "errmsg": "reach max api daily quota limit"})
        return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": 200228332})

    async def hook(request: Request) -> Response:
        received = await provider.record(request)
        if request.path_params["name"] == "gone":
            return Response("this hook was deleted", 410)
        signature = received.headers.get("x-nurture-signature")
        if signature is not None and not verify_webhook(
            SECRET, received.body, signature, now=time.time()
        ):
            return JSONResponse({"error": "bad_signature"}, 400)
        return JSONResponse({"id": f"hook-{next(provider.ids)}"}, 202)

    return Starlette(
        routes=[
            Route("/sms", sms, methods=["POST"]),
            Route("/wechat", wechat, methods=["POST"]),
            Route("/hook/{name}", hook, methods=["POST"]),
        ]
    )
