"""Bodies that never arrive whole, under a real uvicorn: a timeout, and a quiet log line."""

from __future__ import annotations

import logging
import socket
import time
from urllib.parse import urlsplit

import pytest
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette

from nurture.engine.clock import VirtualClock
from nurture.tokens import TokenSigner
from nurture.tracking import create_app
from tests.tracking.conftest import API_KEY, Hooks, Seed

TIMEOUT = 0.5
"""The app's body timeout here, in seconds (30 in production)."""
DECLARED = (
    "POST /api/events HTTP/1.1\r\nHost: tracking.test\r\n"
    f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
    "Content-Length: 200\r\n\r\n"
).encode()
"""A request that declares 200 bytes of body; the tests send only the start of it."""
START = b'{"lead": {"email": "ada@acme.cn"}, '


@pytest.fixture
def app(
    sessions: sessionmaker[Session], signer: TokenSigner, hooks: Hooks, clock: VirtualClock
) -> Starlette:
    """The app with a short body timeout (`live_url` serves this one)."""
    return create_app(
        sessions, signer, api_key=API_KEY, on_wake=hooks.on_wake, clock=clock, body_timeout=TIMEOUT
    )


def connect(live_url: str) -> socket.socket:
    parts = urlsplit(live_url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def test_a_body_declared_but_not_sent_is_answered_408_and_the_connection_closed(
    live_url: str, seed: Seed
) -> None:
    # Given a client that sends the headers and part of the body, then nothing
    with connect(live_url) as client:
        client.sendall(DECLARED + START)
        started = time.monotonic()

        # When it waits
        answer = b""
        while chunk := client.recv(4096):  # until the server closes the connection
            answer += chunk
        waited = time.monotonic() - started

    # Then the server gives up after the timeout with 408, and closes the connection
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"the body did not arrive within 0.5 s" in answer
    # it waited rather than answering at once (loosely: the server's clock started before ours)
    assert TIMEOUT / 2 <= waited < TIMEOUT + 5
    assert seed.event_count() == 0


def test_a_client_that_goes_away_mid_body_is_one_quiet_line(
    live_url: str, seed: Seed, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nurture.tracking")

    # Given a client that sends part of a body
    with connect(live_url) as client:
        client.sendall(DECLARED + START)
        time.sleep(0.1)
    # When it disconnects (the `with` closed the socket), and the service notices
    deadline = time.monotonic() + 5
    while not _ours(caplog) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # anything more it would log

    # Then the log has one line at INFO, without a traceback, and nothing was recorded
    [record] = _ours(caplog)
    assert record.levelno == logging.INFO and record.exc_info is None
    assert record.getMessage() == (
        "POST /api/events: the client went away before its body arrived; nothing recorded"
    )
    assert seed.event_count() == 0


def _ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("nurture")]
