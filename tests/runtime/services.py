"""Real services for the runtime tests: Redis, RabbitMQ, an SMTP server, worker processes.

Redis is a ``redis-server`` the tests start on a port of their own (they flush
and stop it); RabbitMQ a ``rabbitmq-server`` node of their own, on its own
ports, name and data folder (the fault tests kill it; the machine's node on
:5672 is shared), with a vhost per test as its namespace. Without the
server the tests that need it are skipped with a reason, except on CI
(``CI=true``), where that fails them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
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


RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
"""Debian's scripts, run as they are (``/usr/sbin/rabbitmq-server`` would switch to the
rabbitmq user and the machine's own node settings)."""


def rabbitmq_missing() -> str | None:
    """Why a RabbitMQ node of the tests' own cannot be started here, or None."""
    if not (RABBITMQ_BIN / "rabbitmq-server").is_file():
        return "rabbitmq-server is not installed (apt-get install rabbitmq-server)"
    return None


class RabbitServer:
    """A ``rabbitmq-server`` node of the tests' own: its own AMQP and distribution ports,
    node name, configuration, data and logs under `folder`, and its own Erlang cookie.

    The fault tests kill it mid-run (SIGKILL: a crash) and start it again on the same
    data, so the machine's node on :5672, which other runs share, is never touched.
    Each test takes a vhost of its own (`new_vhost`): its queues, namespaced.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.dist_port = _free_port()
        self.node = f"nurture-test-{self.port}@localhost"
        self.process: subprocess.Popen[bytes] | None = None
        self._vhosts = itertools.count(1)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "rabbitmq.conf").write_text(f"listeners.tcp.local = {REDIS_HOST}:{self.port}\n")
        (folder / "rabbitmq-env.conf").write_text("")
        (folder / "enabled_plugins").write_text("[].\n")

    def env(self) -> dict[str, str]:
        folder = str(self.folder)
        return {
            **os.environ,
            "HOME": folder,  # the node's and rabbitmqctl's Erlang cookie
            "RABBITMQ_CONF_ENV_FILE": f"{folder}/rabbitmq-env.conf",
            "RABBITMQ_CONFIG_FILE": f"{folder}/rabbitmq.conf",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{folder}/enabled_plugins",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": REDIS_HOST,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": f"{folder}/mnesia",
            "RABBITMQ_LOG_BASE": f"{folder}/log",
            "ERL_EPMD_ADDRESS": REDIS_HOST,
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def url(self, vhost: str = "") -> str:
        return f"amqp://guest:guest@{REDIS_HOST}:{self.port}/{vhost}"

    def start(self) -> None:
        """Start it (again, on the same ports and data) and wait until it takes connections."""
        with (self.folder / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [str(RABBITMQ_BIN / "rabbitmq-server")],
                env=self.env(),
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.folder / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"rabbitmq-server did not start on port {self.port}:\n{tail}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the node: it goes away at once, as in a crash (what it had on disk stays)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=20)
        self.process = None

    def stop(self) -> None:
        """Stop it for good: SIGTERM to its process group, SIGKILL if it lingers."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def ping(self) -> bool:
        """Whether it takes an AMQP connection (the node is up, not just its port)."""
        import pika
        import pika.exceptions

        parameters = pika.URLParameters(self.url())
        parameters.connection_attempts, parameters.socket_timeout = 1, 2
        try:
            pika.BlockingConnection(parameters).close()
        except pika.exceptions.AMQPError:
            return False
        return True

    def new_vhost(self) -> str:
        """A vhost no test used before, guest allowed in: the test's own namespace."""
        vhost = f"t{next(self._vhosts)}"
        for args in (["add_vhost", vhost], ["set_permissions", "-p", vhost, "guest", *[".*"] * 3]):
            subprocess.run(
                [str(RABBITMQ_BIN / "rabbitmqctl"), "-q", "-n", self.node, *args],
                env=self.env(),
                check=True,
                capture_output=True,
                timeout=60,
            )
        return vhost


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
