"""Email over SMTP (aiosmtplib), with a small pool of persistent connections.

    channel = SmtpChannel(SmtpConfig.from_url("smtp+starttls://user:pass@mail.example.com"
                                              "?from=news@example.com"), pool_size=4)
    receipt = await channel.send(message)

URL schemes: `smtp://` (plain, port 25), `smtp+starttls://` or `smtp://...?starttls=true`
(port 587), `smtps://` (implicit TLS, port 465). Query parameters: `from`, `reply_to`,
`starttls`, `timeout` (seconds), `verify` (`false` skips certificate checks) and
`cafile` (a CA bundle for a private relay).

Replies become receipts: 2xx sent; 5xx on RCPT, DATA or the message itself
failed_permanent; 4xx failed_transient. A timeout or a dropped connection before
the DATA command is failed_transient (the server cannot have taken the message);
from DATA on it is `unknown`: the server may have stored the message and its
reply been lost, so the message is never sent again on its own. A pooled
connection the server closed while idle is replaced and the message tried once
more (such a connection fails at MAIL FROM, before the message is taken).
Refused credentials, a refused sender and TLS failures raise
`ChannelConfigError`: no message could go out, whoever the lead.

The envelope sender (MAIL FROM, the Return-Path bounces go to) is the message's
`return_path` when it has one (a VERP address per delivery), else the From address.

With a `DkimSigner` every message is DKIM-signed with the keys of its From's
domain (`channels.dkim`); a signer without a key for the sender's domain is a
`ChannelConfigError` when the channel is made.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib

from channels.base import ClosingContext, OutboundMessage, Receipt, require_channel
from channels.dkim import DkimSigner
from channels.errors import ChannelConfigError, PermanentChannelError, TransientChannelError
from channels.mime import SMTP_POLICY, Sender, build_email, email_bytes, from_domain, recipient

__all__ = ["Sender", "SmtpChannel", "SmtpConfig", "build_email", "email_bytes"]

Security = Literal["plain", "starttls", "tls"]
Content = bytes | EmailMessage
"""A message as `email_bytes()` wrote it, or as an `EmailMessage` for aiosmtplib to write."""


class _Utf8(bytes):
    """A signed message that needs SMTPUTF8 (an address is not ASCII): sent as these bytes."""


_SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("plain", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}
_PARAMS = ("cafile", "from", "reply_to", "starttls", "timeout", "verify")
_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True}
_BOOLEANS |= {"0": False, "false": False, "no": False, "off": False}
_QUEUE_ID = re.compile(r"queued as ([^\s;]+)", re.IGNORECASE)
_CLOSING = 421  # "service not available, closing transmission channel"


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where and how to reach the SMTP server; `from_url()` reads `NURTURE_SMTP_URL`."""

    host: str
    """Server name or IP address."""
    port: int = 25
    """Server port: 25 plain, 587 STARTTLS, 465 implicit TLS by convention."""
    username: str | None = None
    """Login name for AUTH; no AUTH when absent."""
    password: str | None = None
    """Password for AUTH."""
    security: Security = "plain"
    """`plain` (no TLS, even if offered), `starttls` (upgrade, required) or `tls` (implicit)."""
    timeout: float = 30.0
    """Seconds allowed for connecting and for each SMTP command."""
    verify: bool = True
    """Check the server's certificate and name; turn off only for a test server."""
    cafile: str | None = None
    """A PEM bundle of CAs to trust instead of the system's, for a private relay."""
    from_addr: str | None = None
    """The From header of every message (required to send)."""
    reply_to: str | None = None
    """The Reply-To header of every message, if any."""
    local_hostname: str | None = None
    """The name we give in EHLO; the machine's FQDN, looked up once, when absent."""

    @classmethod
    def from_url(
        cls, url: str, *, from_addr: str | None = None, reply_to: str | None = None
    ) -> SmtpConfig:
        """Parse `smtp[s|+starttls]://[user[:password]@]host[:port][?param=value...]`."""
        try:
            parts = urlsplit(url.strip())
        except ValueError as e:  # an unclosed [ of an IPv6 host
            raise _url_error(re.sub(r":[^:/@]*@", ":***@", url), str(e)) from e
        shown = _redact(url, parts.password)
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise _url_error(shown, "the scheme must be smtp://, smtp+starttls:// or smtps://")
        if not parts.hostname:
            raise _url_error(shown, "it names no host, as in smtp://mail.example.com:587")
        if parts.path not in ("", "/") or parts.fragment:
            raise _url_error(shown, "it has a path or fragment; only host, port and ?params")
        try:
            port = parts.port
        except ValueError as e:
            raise _url_error(shown, "the port must be a number from 1 to 65535") from e
        security, default_port = _SCHEMES[scheme]
        params = _query(parts.query, shown)
        security = _security(security, params.get("starttls"), shown)
        return cls(
            host=parts.hostname,
            port=port or (587 if security == "starttls" else default_port),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            security=security,
            timeout=_timeout(params.get("timeout"), shown),
            verify=_boolean("verify", params.get("verify", "true"), shown),
            cafile=params.get("cafile"),
            from_addr=from_addr or params.get("from"),
            reply_to=reply_to or params.get("reply_to"),
        )

    @property
    def sender(self) -> Sender:
        """The From and Reply-To of every message; `ChannelConfigError` without a From."""
        if not self.from_addr or "@" not in parseaddr(self.from_addr)[1]:
            raise ChannelConfigError(
                f"no valid sender address for SMTP server {self.host} (got {self.from_addr!r}): "
                "add ?from=news@example.com to the SMTP URL"
            )
        return Sender(self.from_addr, self.reply_to)


def _redact(url: str, password: str | None) -> str:
    return url.replace(f":{password}@", ":***@", 1) if password else url


def _url_error(shown: str, why: str) -> ChannelConfigError:
    return ChannelConfigError(f"malformed SMTP URL {shown!r}: {why}")


def _query(query: str, shown: str) -> dict[str, str]:
    try:
        params = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError as e:
        raise _url_error(shown, f"cannot read the query string ({e})") from e
    unknown = sorted(set(params) - set(_PARAMS))
    if unknown:
        raise _url_error(shown, f"unknown parameter {unknown[0]!r}; known: {', '.join(_PARAMS)}")
    return params


def _boolean(name: str, value: str, shown: str) -> bool:
    try:
        return _BOOLEANS[value.lower()]
    except KeyError:
        raise _url_error(shown, f"{name}={value!r} is not true or false") from None


def _security(security: Security, starttls: str | None, shown: str) -> Security:
    if starttls is None or not _boolean("starttls", starttls, shown):
        return security
    if security == "tls":
        raise _url_error(shown, "smtps:// is already TLS; drop ?starttls=true")
    return "starttls"


def _timeout(value: str | None, shown: str) -> float:
    if value is None:
        return 30.0
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise _url_error(shown, f"timeout={value!r} is not a positive number of seconds")
    return seconds


class _Dropped(TransientChannelError):
    """Raised inside the pool when the server dropped a connection before DATA; worth one retry."""


class _Client(aiosmtplib.SMTP):
    """An SMTP connection that notes when a transaction reaches DATA.

    From the DATA command on, a timeout or a lost connection may hide a stored
    message: the server can have taken it and its reply been lost.
    """

    data_started = False

    async def data(self, *args: Any, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        self.data_started = True
        return await super().data(*args, **kwargs)


class SmtpChannel(ClosingContext):
    """Sends email over a pool of up to `pool_size` persistent SMTP connections."""

    def __init__(
        self, config: SmtpConfig, *, pool_size: int = 4, dkim: DkimSigner | None = None
    ) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        self.config = config
        self.pool_size = pool_size
        self.connections_opened = 0
        """How many connections this channel has opened (for tests and metrics)."""
        self._sender = config.sender
        self._envelope_from = parseaddr(self._sender.from_addr)[1]
        self._dkim = dkim
        if dkim is not None:
            dkim.check_domain(from_domain(self._sender.from_addr))
        self._tls_context = _tls_context(config)
        self._local_hostname = config.local_hostname
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[_Client] = []
        self._closed = False

    @classmethod
    def from_url(
        cls, url: str, *, pool_size: int = 4, dkim: DkimSigner | None = None
    ) -> SmtpChannel:
        return cls(SmtpConfig.from_url(url), pool_size=pool_size, dkim=dkim)

    async def send(self, message: OutboundMessage) -> Receipt:
        require_channel(message, "email", "SmtpChannel")
        if self._closed:
            raise RuntimeError("SmtpChannel.send() after aclose()")
        self._check_loop()
        try:
            address = recipient(message.to)[1]
            envelope = message.return_path or self._envelope_from
            email = self._content(message, address, envelope)
        except ChannelConfigError:  # no DKIM key for the message's From: nothing can go out
            raise
        except PermanentChannelError as e:
            return Receipt.permanent(str(e))
        async with self._slots:
            try:
                return await self._deliver(email, address, envelope)
            except TransientChannelError as e:
                return Receipt.transient(str(e))

    def _content(self, message: OutboundMessage, address: str, envelope: str) -> Content:
        """The message's bytes; an `EmailMessage` when an address needs SMTPUTF8.

        aiosmtplib generates such a message in UTF-8 and asks the server for
        SMTPUTF8; everything else goes as prepared bytes, generated once. With
        DKIM keys the bytes are signed (a UTF-8 message is generated here, then signed).
        """
        ascii = address.isascii() and envelope.isascii()
        if self._dkim is None:
            return (
                email_bytes(message, self._sender) if ascii else build_email(message, self._sender)
            )
        domain = from_domain(message.headers.get("From", self._sender.from_addr))
        if ascii:
            return self._dkim.sign(email_bytes(message, self._sender), domain)
        raw = build_email(message, self._sender).as_bytes(policy=SMTP_POLICY.clone(utf8=True))
        return _Utf8(self._dkim.sign(raw, domain))

    async def aclose(self) -> None:
        """Say QUIT on idle connections; busy ones close when their message is done."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(client) for client in idle))
        await asyncio.sleep(0)  # let the transports finish closing their sockets

    async def _deliver(self, email: Content, address: str, envelope: str) -> Receipt:
        client, reused = await self._checkout()
        try:
            return await self._transact(client, email, address, envelope)
        except _Dropped:
            if not reused:
                raise
        return await self._transact(await self._connect(), email, address, envelope)

    async def _checkout(self) -> tuple[_Client, bool]:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                return client, True
            _close(client)
        return await self._connect(), False

    def _checkin(self, client: _Client) -> None:
        if self._closed or not client.is_connected:
            _close(client)
        else:
            self._idle.append(client)

    async def _connect(self) -> _Client:
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        config = self.config
        client = _Client(
            hostname=config.host,
            port=config.port,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            tls_context=self._tls_context,
            timeout=config.timeout,
            local_hostname=self._local_hostname,
        )
        try:
            await client.connect()
        except Exception as e:
            _close(client)
            raise _connect_error(e, config) from e
        if config.username:
            # Log in after connecting, holding the transport: a refused login must abort the
            # very socket it used, which aiosmtplib would otherwise close politely and drop.
            transport = client.transport
            try:
                await client.login(config.username, config.password or "")
            except Exception as e:
                _close(client, transport)
                raise _connect_error(e, config) from e
        self.connections_opened += 1
        return client

    async def _transact(self, client: _Client, email: Content, to: str, envelope: str) -> Receipt:
        client.data_started = False
        try:
            _, reply = await _send(client, email, envelope, to)
        except aiosmtplib.SMTPRecipientsRefused as e:
            self._checkin(client)
            refused = e.recipients[0]
            return _refused("recipient refused", refused.code, refused.message)
        except aiosmtplib.SMTPSenderRefused as e:
            self._checkin(client)
            if e.code >= 500:
                where = f"SMTP server {self.config.host}"
                raise ChannelConfigError(
                    f"{where} refused sender {e.sender}: {e.code} {e.message}"
                ) from e
            return _refused("sender refused", e.code, e.message)
        except aiosmtplib.SMTPResponseException as e:
            self._checkin(client)
            return _refused("message refused", e.code, e.message)
        except aiosmtplib.SMTPTimeoutError as e:  # an OSError too: caught first
            _close(client)
            what = f"SMTP server {self.config.host} timed out ({self.config.timeout:g} s)"
            if client.data_started:
                return _unknown(what, e)
            raise TransientChannelError(f"{what} before DATA: {e}") from e
        except (aiosmtplib.SMTPServerDisconnected, OSError) as e:
            _close(client)
            what = f"SMTP server {self.config.host} dropped the connection"
            if client.data_started:
                return _unknown(what, e)
            raise _Dropped(f"{what}: {e}") from e
        except (aiosmtplib.SMTPNotSupported, ValueError) as e:
            self._checkin(client)  # checked before any command: the connection is clean
            return Receipt.permanent(f"cannot send to {to}: {e}")
        except aiosmtplib.SMTPException as e:
            _close(client)
            if client.data_started:
                return _unknown(f"SMTP error with {self.config.host}", e)
            raise TransientChannelError(f"SMTP error with {self.config.host}: {e}") from e
        except BaseException:
            _close(client)  # cancelled mid-transaction: the connection's state is unknown
            raise
        self._checkin(client)
        match = _QUEUE_ID.search(reply)
        return Receipt.sent(match.group(1) if match else None, reply)


async def _send(
    client: aiosmtplib.SMTP, email: Content, sender: str, to: str
) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
    if isinstance(email, _Utf8):
        if client.is_ehlo_or_helo_needed:
            await client.ehlo()
        if not client.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported(f"the server does not take SMTPUTF8 for {to}")
        return await client.sendmail(sender, [to], email, mail_options=["SMTPUTF8"])
    if isinstance(email, bytes):
        return await client.sendmail(sender, [to], email)
    return await client.send_message(email, sender=sender, recipients=[to])


def _unknown(what: str, e: Exception) -> Receipt:
    return Receipt.unknown(
        f"{what} after DATA: the message may have been delivered; not sent again ({e})"
    )


def _refused(what: str, code: int, text: str) -> Receipt:
    detail = f"{what}: {code} {text}"
    if code == _CLOSING:
        raise _Dropped(detail)
    if code >= 500:
        return Receipt.permanent(detail)
    return Receipt.transient(detail)


def _tls_context(config: SmtpConfig) -> ssl.SSLContext | None:
    if config.security == "plain":
        return None
    context = ssl.create_default_context(cafile=config.cafile)
    if not config.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _connect_error(e: Exception, config: SmtpConfig) -> Exception:
    """Translate an error from connect, STARTTLS or AUTH into our hierarchy."""
    where = f"SMTP server {config.host}:{config.port}"
    if isinstance(e, aiosmtplib.SMTPAuthenticationError):
        return ChannelConfigError(
            f"{where} refused the credentials of {config.username!r}: {e.code} {e.message}"
        )
    if isinstance(e, aiosmtplib.SMTPResponseException):
        if e.code >= 500:
            return ChannelConfigError(f"{where} refused us: {e.code} {e.message}")
        return TransientChannelError(f"{where} is unavailable: {e.code} {e.message}")
    if isinstance(e, aiosmtplib.SMTPTimeoutError):
        return TransientChannelError(f"{where} timed out after {config.timeout:g} s: {e}")
    if isinstance(e, ssl.SSLError) or isinstance(e.__cause__, ssl.SSLError):
        return ChannelConfigError(
            f"TLS with {where} failed ({e}); check smtps:// against smtp+starttls://, "
            "the certificate, and ?verify= or ?cafile="
        )
    if isinstance(e, ConnectionError | OSError):
        return TransientChannelError(f"cannot connect to {where}: {e}")
    return ChannelConfigError(f"{where}: {e}")  # STARTTLS or AUTH not offered, and the like


async def _quit(client: _Client) -> None:
    transport = client.transport
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        pass
    finally:
        _close(client, transport)


def _close(client: aiosmtplib.SMTP, transport: asyncio.BaseTransport | None = None) -> None:
    """Close at once: a TLS transport's polite shutdown would outlive a closing event loop."""
    transport = transport or client.transport
    client.close()
    if isinstance(transport, asyncio.Transport):
        transport.abort()
