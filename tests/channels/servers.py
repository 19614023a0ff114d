"""The SMTP server the channel tests talk to: aiosmtpd, recording, refusing, dropping."""

from __future__ import annotations

import asyncio
import itertools
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

USER, PASSWORD = "ada", "s3cret pass"


@dataclass
class Delivered:
    """One message as the SMTP server received it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes


@dataclass
class Recorder:
    """aiosmtpd handler: keeps messages, refuses the recipients in `refusals`."""

    messages: list[Delivered] = field(default_factory=list)
    refusals: dict[str, str] = field(default_factory=dict)
    late: float = 0.0
    """Seconds to wait, after storing a message, before saying 250 (a reply the client may miss)."""
    drop: bool = False
    """Store each message, then close the connection instead of replying."""

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refusals:
            return self.refusals[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = BytesParser(policy=default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        self.messages.append(
            Delivered(str(envelope.mail_from), list(envelope.rcpt_tos), message, raw)
        )
        if self.drop and server.transport is not None:
            server.transport.close()
        if self.late:
            await asyncio.sleep(self.late)
        return f"250 2.0.0 Ok: queued as Q{len(self.messages)}"


class _CountingSMTP(SMTP):
    """An SMTP session that reports itself to its server while it is open."""

    def __init__(self, server: SmtpServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._server = server
        self._number = next(server.numbers)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._server.open.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._server.open.discard(self)
        self._server.greeted.discard(self._number)
        super().connection_lost(error)

    async def smtp_EHLO(self, hostname: str) -> None:
        server = self._server  # the startup probe never says EHLO, so it is never counted
        if self._number not in server.greeted:
            server.greeted.add(self._number)
            server.connections += 1
            server.peak = max(server.peak, len(server.greeted))
        await super().smtp_EHLO(hostname)


class SmtpServer(Controller):
    """aiosmtpd on 127.0.0.1 and an ephemeral port; counts the connections that said EHLO."""

    def __init__(self, scheme: str = "smtp", **kwargs: Any) -> None:
        self.scheme = scheme
        """How a client reaches it: `smtp`, `smtp+starttls` or `smtps`."""
        self.recorder = Recorder()
        self.numbers = itertools.count(1)
        self.open: set[_CountingSMTP] = set()
        self.greeted: set[int] = set()
        """Sessions open now that said EHLO (client connections, not the startup probe)."""
        self.connections = 0
        """Client connections made so far."""
        self.peak = 0
        """The most client connections open at once."""
        super().__init__(
            self.recorder, hostname="127.0.0.1", port=0, server_hostname="mx.test", **kwargs
        )

    def factory(self) -> SMTP:
        return _CountingSMTP(self, self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)  # bound to port 0: learn the real port
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()

    @property
    def messages(self) -> list[Delivered]:
        return self.recorder.messages

    def url(self, userinfo: str = "", query: str = "") -> str:
        """The SMTP URL of this server, with a From address and `query` added."""
        query = "&".join(q for q in ("from=news@acme.test", query) if q)
        return f"{self.scheme}://{userinfo}127.0.0.1:{self.port}?{query}"

    def refuse(self, address: str, reply: str) -> None:
        """Answer RCPT TO `address` with `reply`, such as `550 5.1.1 no such user`."""
        self.recorder.refusals[address] = reply

    def drop_connections(self) -> None:
        """Close every open session from the server side, as an idle timeout does."""

        async def drop() -> None:
            for session in list(self.open):
                if session.transport is not None:
                    session.transport.close()

        asyncio.run_coroutine_threadsafe(drop(), self.loop).result(timeout=5)


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)
