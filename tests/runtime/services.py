"""Real services for the runtime tests: Redis, an SMTP server, worker processes.

Redis is a ``redis-server`` the tests start on a port of their own (they flush
and stop it); without ``redis-server`` the tests that need it are skipped
with a reason, except on CI (``CI=true``), where that fails them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

REDIS_HOST = "127.0.0.1"


def unavailable(reason: str) -> None:
    """Skip the test for want of a service, or fail it on CI."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


class RedisServer:
    """A ``redis-server`` of the tests' own, on a free port, that keeps nothing on disk.

    Tests flush it and stop it (the fault tests shut it down mid-run); on the
    shared Redis on :6379 that would wipe or stop whatever else uses it.
    """

    def __init__(self) -> None:
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://{REDIS_HOST}:{self.port}/{db}"

    def start(self) -> None:
        """Start it (again, on the same port) and wait until it answers."""
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("redis-server is not installed")
        self.process = subprocess.Popen(
            [
                server,
                "--bind",
                REDIS_HOST,
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """``SHUTDOWN NOSAVE``: it goes away with every message it held."""
        if self.process is None:
            return
        import redis

        with contextlib.suppress(redis.RedisError):  # the connection drops as it shuts down
            redis.Redis(REDIS_HOST, self.port, socket_timeout=5).shutdown(nosave=True)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(REDIS_HOST, self.port, socket_timeout=2).ping())
        except redis.RedisError:
            return False

    def flush(self) -> None:
        """Empty every database of it (when it runs)."""
        import redis

        client = redis.Redis(REDIS_HOST, self.port, socket_timeout=5)
        try:
            client.flushall()
        except redis.RedisError:
            pass  # stopped by the test; a new start is empty anyway
        finally:
            client.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((REDIS_HOST, 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class Received:
    """One message as the SMTP server got it."""

    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Recorder:
    """aiosmtpd handler: keeps every message; refuses the recipients in `refusals`."""

    messages: list[Received] = field(default_factory=list)
    refusals: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay: float = 0.0
    """Seconds each message takes to accept (a slower server, for the fault tests)."""
    late: float = 0.0
    """Seconds to wait, after storing a message, before saying 250 (see `late_every`)."""
    late_every: int = 1
    """Only every n-th message is answered `late` (1: all of them)."""

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refusals:
            return self.refusals[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        raw = envelope.original_content or b""
        message = BytesParser(policy=default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(Received(list(envelope.rcpt_tos), message))
            count = len(self.messages)
        if self.late and count % self.late_every == 0:
            await asyncio.sleep(self.late)  # stored: a client that gives up first must not resend
        return f"250 2.0.0 Ok: queued as Q{count}"


class SmtpServer(Controller):
    """aiosmtpd on 127.0.0.1, an ephemeral port, recording what it receives."""

    def __init__(
        self, delay: float = 0.0, *, late: float = 0.0, late_every: int = 1, **kwargs: Any
    ) -> None:
        self.recorder = Recorder(delay=delay, late=late, late_every=late_every)
        super().__init__(self.recorder, hostname="127.0.0.1", port=0, **kwargs)

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()

    @property
    def messages(self) -> list[Received]:
        with self.recorder.lock:
            return list(self.recorder.messages)

    def url(self, timeout: float = 10) -> str:
        return f"smtp://127.0.0.1:{self.port}?from=news@acme.test&timeout={timeout:g}"

    def refuse(self, address: str, reply: str) -> None:
        self.recorder.refusals[address] = reply

    def message_ids(self) -> Counter[str]:
        return Counter(str(m.message["Message-ID"]) for m in self.messages)

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages
