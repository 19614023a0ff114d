"""Reading request bodies for the tracking service: bounded in size and in time.

A body larger than its limit is refused with 413 before or while it is read;
one that does not arrive whole within the timeout with 408 and a closed
connection (uvicorn's keep-alive timeout does not cover a body that was
declared and never sent, so without it a client holds a connection and a
handler for as long as it likes). JSON bodies are read by
`schema.load_json`, with its bounds on nesting and digits.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final, NoReturn

from starlette.requests import Request

from nurture.tracking import schema
from nurture.tracking.schema import Problem

logger = logging.getLogger("nurture.tracking")

MAX_BODY: Final = 1024 * 1024
"""The largest API body, in bytes."""
MAX_FORM: Final = 16 * 1024
"""The largest unsubscribe POST body, in bytes."""
BODY_TIMEOUT: Final = 30.0
"""Seconds a request's whole body may take to arrive (1 MiB in 30 s is 35 KB/s)."""


class Reject(Exception):
    """Raised inside a handler to answer `status` with JSON errors."""

    def __init__(self, status: int, path: str, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status = status
        self.problems = [Problem(path, message)]
        self.headers = headers


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body, refused above `limit` bytes (413) or when it takes longer than
    `timeout` seconds (408, and the connection is closed)."""
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise Reject(400, "$", "Content-Length is not a number")
    if declared is not None and int(declared) > limit:
        _too_large(limit)
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    _too_large(limit)
    except TimeoutError:
        where = f"{request.method} {request.url.path}"
        logger.info(
            "%s: the body did not arrive within %g s; closing the connection", where, timeout
        )
        message = f"the body did not arrive within {timeout:g} s"
        raise Reject(408, "$", message, Connection="close") from None
    return bytes(body)


def _too_large(limit: int) -> NoReturn:
    raise Reject(413, "$", f"the body is larger than {limit} bytes; send fewer items")


async def read_json(request: Request, timeout: float) -> Any:
    raw = await read_body(request, MAX_BODY, timeout)
    if not raw.strip():
        raise Reject(400, "$", "the body is empty; send a JSON object or a list of them")
    try:
        return schema.load_json(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as e:
        raise Reject(400, "$", f"the body is not UTF-8 text (byte {e.start})") from e
    except schema.NotJson as e:
        where = f" at line {e.line} column {e.column}" if e.line else ""
        raise Reject(400, "$", f"the body is not valid JSON: {e}{where}") from e


def _no_constant(name: str) -> NoReturn:
    raise schema.NotJson(f"{name} is not a JSON number")
