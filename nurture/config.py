"""The runtime's settings: environment variables over an optional ``nurture.toml``.

    settings = Settings.load()        # os.environ, then ./nurture.toml, then the defaults

Each field has an environment variable (``NURTURE_`` and the field's name in
capitals, e.g. ``NURTURE_BATCH_SIZE``) and a key of the same name in
``nurture.toml`` in the current directory (``batch_size = 100``); the
environment wins. With nothing set, everything runs embedded: a SQLite file,
an in-process broker and an ``outbox/`` folder instead of an SMTP server.

A bad value is a `ConfigError` whose message is one line naming the variable
(or the ``nurture.toml`` key) and what is expected; nothing else is read
lazily, so a worker with a typo in its environment stops at once, not at its
first send.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import SplitResult, urlsplit

from sqlalchemy.exc import ArgumentError

from nurture import db
from nurture.engine.caps import Cap
from nurture.models import CONSENT_CHANNELS

if TYPE_CHECKING:
    from channels import DkimSigner, SmtpConfig, TokenEndpoint

TOML_FILE: Final = "nurture.toml"
ENV_PREFIX: Final = "NURTURE_"
DEV_SECRET_KEY: Final = "nurture-development-key-not-secret-do-not-use-in-production"
"""The embedded mode's key when none is set: the tracking service's, so both sign alike."""
DEFAULT_SENDER: Final = "Nurture <nurture@localhost>"
BROKER_SCHEMES: Final = ("redis", "rediss", "unix", "amqp", "amqps")
CAP_PERIODS: Final = {"hour": 3600, "day": 86400, "week": 7 * 86400, "month": 30 * 86400}
MAX_CAP_PERIOD: Final = 366 * 86400


class ConfigError(ValueError):
    """Raised when a setting is missing or malformed; the message is one line naming it."""


@dataclass(frozen=True, slots=True)
class DkimEntry:
    """One key of ``NURTURE_DKIM``: where its record is and which file holds it."""

    domain: str
    """The signing domain (`d=`)."""
    selector: str
    """The selector (`s=`)."""
    keyfile: Path
    """The private key: PEM (RSA or Ed25519) or an Ed25519 seed in base64."""
    algorithm: str | None = None
    """``rsa`` or ``ed25519``, checked against the file; None: the file's own."""

    def __str__(self) -> str:
        text = f"{self.domain}:{self.selector}:{self.keyfile}"
        return f"{text}:{self.algorithm}" if self.algorithm else text


@dataclass(frozen=True, slots=True)
class DomainRate:
    """One entry of ``NURTURE_DOMAIN_RATES``: at most `count` emails to `domain` per `seconds`."""

    domain: str
    """The receiving domain (``qq.com``), or ``*`` for every domain without its own rate."""
    count: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.domain}={self.count}/{self.seconds}s"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the scheduler, the workers and ``nurture run`` are configured with."""

    database_url: str = db.DEFAULT_DATABASE_URL
    """SQLite file (embedded) or ``postgresql://...`` (production)."""
    broker_url: str | None = None
    """``redis://host:6379/0`` or ``amqp://user:password@host:5672/vhost`` (RabbitMQ); unset:
    Dramatiq's in-process stub broker (``nurture run``)."""
    smtp_url: str | None = None
    """``smtp[s|+starttls]://user:pass@host:port?from=...``; unset: emails go to `outbox`."""
    outbox: Path = Path("outbox")
    """The folder of ``.eml`` (and ``.sms.json``, ...) files used when `smtp_url` is unset."""
    secret_key: str | None = None
    """Token keys, comma-separated, newest last; unset: the public development key (SQLite only)."""
    base_url: str = "http://127.0.0.1:8080"
    """Where the tracking service is reached: the prefix of open, click and unsubscribe links."""
    api_key: str | None = None
    """The tracking service's ``/api/*`` key; unset: the API answers 503."""
    sender: str | None = None
    """The From of every email (``Acme <news@acme.example>``); unset: the SMTP URL's ``from``."""
    dkim: tuple[DkimEntry, ...] = ()
    """DKIM keys, ``domain:selector:keyfile[:algorithm]`` comma-separated (``rsa`` or
    ``ed25519``; the file's own key type when omitted): every email from the domain (or a
    subdomain) is signed with each of its keys, email and outbox alike. Rotation: add the
    new selector's key, publish its TXT record (``nurture doctor dkim``), switch, retire the
    old one a week later (see the README)."""
    sales_email: str | None = None
    """Where ``notify sales`` sends its email when the lead has no owner address."""
    sms_url: str | None = None
    """The SMS provider's endpoint (see `channels.sms`); unset: SMS fails, or goes to the outbox."""
    sms_token: str | None = None
    """Bearer token for `sms_url`."""
    wechat_url: str | None = None
    """A relay for WeChat template messages that keeps the access token itself (see
    `channels.wechat`); or set `wechat_appid` and `wechat_secret` to call WeChat directly."""
    wechat_token: str | None = None
    """Bearer token for `wechat_url`."""
    wechat_appid: str | None = None
    """The official account's appid: WeChat is called directly, its access token fetched
    from `wechat_token_url` and shared by all workers through the database."""
    wechat_secret: str | None = None
    """The appid's secret (AppSecret)."""
    wechat_api_url: str = "https://api.weixin.qq.com"
    """Where the WeChat API is: template messages go to ``/cgi-bin/message/template/send``."""
    wechat_token_url: str | None = None
    """Where tokens come from: ``.../cgi-bin/stable_token`` (the default, under
    `wechat_api_url`) or ``.../cgi-bin/token``."""
    webhook_url: str | None = None
    """Where ``send webhook`` messages are POSTed."""
    webhook_secret: str | None = None
    """HMAC secret that signs webhook bodies (``X-Nurture-Signature``)."""
    crm_webhook_url: str | None = None
    """Where a new MQL's ``notify by webhook`` JSON is POSTed (signed as webhooks are)."""
    wecom_url: str | None = None
    """Where a new MQL's ``notify by wecom`` message is POSTed (a WeCom app-message endpoint
    or relay); the body is the template's JSON with ``touser`` set to the owner's WeCom id."""
    smtp_esp: str | None = None
    """The ESP behind `smtp_url` (``sendgrid``, ``postmark``, ``mailgun``, ``ses``), whose
    header makes its webhooks echo our delivery id; unset: known from the SMTP host, so set
    it only for a relay of your own (Postfix) that forwards to the ESP."""
    ses_topic_arns: tuple[str, ...] = ()
    """SNS topics (ARNs, comma-separated) whose SES events ``POST /esp/ses`` accepts; unset:
    it answers 503. Any AWS account can subscribe a URL to its topics: others are refused."""
    sendgrid_webhook_key: str | None = None
    """The SendGrid Event Webhook's verification key (base64, as SendGrid shows it, or PEM);
    unset: ``POST /esp/sendgrid`` answers 503."""
    postmark_webhook_auth: str | None = None
    """``user:password`` that Postmark's webhook URL carries (basic auth); unset:
    ``POST /esp/postmark`` answers 503."""
    mailgun_signing_key: str | None = None
    """Mailgun's HTTP webhook signing key; unset: ``POST /esp/mailgun`` answers 503."""
    templates: tuple[Path, ...] = ()
    """Extra template folders (``os.pathsep``-separated), searched after the campaign's own."""
    worker_processes: int = 1
    """Worker processes started by ``nurture worker``."""
    worker_threads: int = 4
    """Worker threads per process; each runs one batch at a time."""
    batch_size: int = 250
    """Enrollments per message: one claim, one load, one insert and one update per batch."""
    send_concurrency: int = 10
    """Messages in flight at once per worker process (and SMTP connections in its pool)."""
    global_cap: Cap | None = None
    """Touches a lead may get from all campaigns together, e.g. ``5 per week``; unset: none."""
    lease_seconds: float = 300.0
    """How long a claimed enrollment is held; a lost message is sent again after this."""
    shutdown_seconds: float = 30.0
    """How long a ``nurture worker`` process may take to stop on SIGTERM or SIGINT (to it or
    its process group): it takes no new work, lets the sends on the wire finish, stores
    them, and hands the rest back; at the limit it exits (those sends become ``unknown``)."""
    scheduler_interval: float = 1.0
    """Seconds the scheduler sleeps between polls."""
    sweep_interval: float = 3600.0
    """Seconds (of campaign time) between sweeps for ``enroll when inactive for``."""
    max_attempts: int = 5
    """Sends of one touch before a transient failure counts as permanent."""
    retry_seconds: float = 60.0
    """The first retry's delay; each next one doubles, with jitter, up to an hour."""
    competitor_domains: tuple[str, ...] = ()
    """Email domains (comma-separated) whose leads the lead API skips as competitors'."""
    domain_rates: tuple[DomainRate, ...] = ()
    """Emails per receiving domain, ``qq.com=20/min,163.com=10/min,*=200/min`` (``*``: each
    other domain); an email over its domain's rate is deferred until the window allows it,
    never dropped. Shared by all workers through `throttle_url`. Unset: no throttling."""
    throttle_url: str | None = None
    """Where the rate windows are kept (``redis://host:6379/1``); unset: the broker when it is
    Redis, else this process's memory (the embedded default's one process)."""
    require_consent: tuple[str, ...] = ()
    """Channels (``email``, ``sms``, ``wechat``) on which a lead gets nothing without a given
    consent (`nurture.store.consents`); empty: consent is recorded, not required."""
    default_calling_code: str | None = None
    """The country code of national phone numbers (``86``); unset: numbers need a ``+``."""
    render_max_size: int = 1_000_000
    """Characters in a rendered message (all parts) and in any value its template makes."""
    render_seconds: float = 2.0
    """Time one message's templates may take to render; past it the delivery fails."""
    console_lockout_attempts: int = 5
    """Wrong passwords in a row that lock a console user out."""
    console_lockout_seconds: float = 900.0
    """How long a console user stays locked out after them."""
    console_invite_seconds: float = 7 * 86400.0
    """How long an invitation's link to choose a password works (seconds, or ``7d``)."""
    bounce_domain: str | None = None
    """The domain of VERP return paths (``bounce+<delivery>.<signature>@<domain>``): its MX
    points at ``nurture bounces``; unset: emails go out with the From address as MAIL FROM."""
    soft_bounces: int = 3
    """Soft (4.x.x) bounces of one address within `soft_bounce_window` that count as hard."""
    soft_bounce_window: float = 7 * 86400.0
    """Seconds (or ``7d``, ``12h``) within which soft bounces are counted together."""
    statement_timeout: float = 60.0
    """Seconds any one PostgreSQL statement nurture sends may run (``statement_timeout`` on
    every connection); past it the server cancels it. 0: no limit. An export's rows are one
    ``COPY`` that runs as long as the reader takes, so only the count before it is limited."""

    @classmethod
    def load(
        cls, env: Mapping[str, str] | None = None, cwd: str | os.PathLike[str] | None = None
    ) -> Settings:
        """The settings from `env` (default: ``os.environ``) over ``nurture.toml`` in `cwd`."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        toml = Path(cwd or ".") / TOML_FILE
        if toml.is_file():
            values.update(_read_toml(toml))
        from_toml = set(values)
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw.strip() != "":
                values[f.name] = _parse(f.name, raw, ENV_PREFIX + f.name.upper())
                from_toml.discard(f.name)
        settings = cls(**values)
        try:
            settings.check()
        except ConfigError as e:
            raise _naming_toml(e, toml, from_toml) from None
        return settings

    @classmethod
    def load_one(
        cls,
        name: str,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> Any:
        """One setting as `load` reads it, for commands that read no other from the environment.

        ``nurture.toml`` is read (and checked) whole; of the environment only this setting's
        variable, so a bad value elsewhere stops only the commands that use it.
        """
        env = os.environ if env is None else env
        toml = Path(cwd or ".") / TOML_FILE
        values = {k: v for k, v in _read_toml(toml).items() if k == name} if toml.is_file() else {}
        from_toml = set(values)
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None and raw.strip() != "":
            values[name] = _parse(name, raw, ENV_PREFIX + name.upper())
            from_toml.clear()
        try:
            settings = cls(**values)
            settings.check()
        except ConfigError as e:
            raise _naming_toml(e, toml, from_toml) from None
        return getattr(settings, name)

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with `changes`, checked like loaded settings."""
        settings = replace(self, **changes)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise `ConfigError` for the first setting that cannot work."""
        try:
            backend = db.normalize_url(self.database_url).get_backend_name()
        except (ArgumentError, ValueError) as e:
            raise ConfigError(f"NURTURE_DATABASE_URL is not a database URL: {e}") from e
        if backend not in db.BACKENDS:
            raise ConfigError(f"NURTURE_DATABASE_URL: use sqlite or postgresql, not {backend}")
        if self.broker_url is not None:
            _broker_url(self.broker_url)
        if self.smtp_url is not None:
            self.smtp_config()
        if self.throttle_url is not None:
            scheme = _split("NURTURE_THROTTLE_URL", self.throttle_url).scheme
            if scheme not in ("redis", "rediss", "memory"):
                raise ConfigError(
                    "NURTURE_THROTTLE_URL must be a Redis URL (redis://host:6379/1) or "
                    f"memory://, got {scheme!r}"
                )
        _http_url("NURTURE_BASE_URL", self.base_url)
        self._check_wechat()
        urls = ("sms_url", "wechat_url", "webhook_url", "crm_webhook_url", "wecom_url")
        for name in (*urls, "wechat_api_url", "wechat_token_url"):
            value = getattr(self, name)
            if value is not None:
                _http_url(ENV_PREFIX + name.upper(), value)
        self._check_keys()
        code = self.default_calling_code
        if code is not None and not (code.isascii() and code.isdigit() and len(code) <= 3):
            raise ConfigError(f"NURTURE_DEFAULT_CALLING_CODE must be 1 to 3 digits, got {code!r}")
        for name in ("sender", "sales_email"):
            value = getattr(self, name)
            if value is not None and "@" not in parseaddr(value)[1]:
                raise ConfigError(f"{ENV_PREFIX}{name.upper()} is not an email address: {value!r}")
        self._check_dkim()
        self._check_numbers()
        domain = self.bounce_domain
        if domain is not None and not re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", domain):
            raise ConfigError(f"NURTURE_BOUNCE_DOMAIN is not a domain name: {domain!r}")
        self._check_esp()

    def _check_dkim(self) -> None:
        from channels import ChannelConfigError

        signer = self.dkim_signer()
        if signer is not None:
            try:
                signer.check_domain(self.sender_domain())
            except ChannelConfigError as e:
                raise ConfigError(f"NURTURE_DKIM: {e}") from e

    def _check_esp(self) -> None:
        from nurture.deliverability.esp import outgoing, sendgrid
        from nurture.deliverability.esp.config import check_topic

        if self.smtp_esp is not None and self.smtp_esp not in outgoing.PROVIDERS:
            raise ConfigError(
                f"NURTURE_SMTP_ESP must be one of {', '.join(outgoing.PROVIDERS)}, "
                f"got {self.smtp_esp!r}"
            )

        for arn in self.ses_topic_arns:
            if not check_topic(arn):
                raise ConfigError(
                    f"NURTURE_SES_TOPIC_ARNS: {arn!r} is not an SNS topic ARN such as "
                    "arn:aws:sns:us-east-1:123456789012:ses-events"
                )
        if self.sendgrid_webhook_key:
            try:
                sendgrid.public_key(self.sendgrid_webhook_key)
            except ValueError as e:
                raise ConfigError(f"NURTURE_SENDGRID_WEBHOOK_KEY: {e}") from None
        auth = self.postmark_webhook_auth
        if auth is not None and not (auth.partition(":")[0] and auth.partition(":")[2]):
            raise ConfigError("NURTURE_POSTMARK_WEBHOOK_AUTH must read user:password")

    def _check_wechat(self) -> None:
        if bool(self.wechat_appid) != bool(self.wechat_secret):
            raise ConfigError(
                "NURTURE_WECHAT_APPID and NURTURE_WECHAT_SECRET go together: set both, or neither"
            )
        if self.wechat_appid and self.wechat_url:
            raise ConfigError(
                "NURTURE_WECHAT_URL (a relay) and NURTURE_WECHAT_APPID (WeChat itself) are both "
                "set: keep one"
            )

    def wechat_token_endpoint(self) -> TokenEndpoint | None:
        """Where and as whom to fetch WeChat access tokens; None without an appid."""
        from channels import TokenEndpoint

        if not (self.wechat_appid and self.wechat_secret):
            return None
        url = self.wechat_token_url or self.wechat_api_url.rstrip("/") + "/cgi-bin/stable_token"
        return TokenEndpoint(self.wechat_appid, self.wechat_secret, url)

    def _check_keys(self) -> None:
        raw = self.secret_key or ""
        if raw.strip() and any(not k.strip() for k in raw.split(",")):
            raise ConfigError("NURTURE_SECRET_KEY has an empty key in its comma-separated list")

    def _check_numbers(self) -> None:
        limits: dict[str, tuple[float, float]] = {
            "worker_processes": (1, 64),
            "worker_threads": (1, 256),
            "batch_size": (1, 1000),
            "send_concurrency": (1, 1000),
            "lease_seconds": (1, 86400),
            "shutdown_seconds": (1, 3600),
            "scheduler_interval": (0.01, 3600),
            "sweep_interval": (1, 365 * 86400),
            "max_attempts": (1, 100),
            "retry_seconds": (0.001, 86400),
            "render_max_size": (1000, 100_000_000),
            "render_seconds": (0.01, 600),
            "statement_timeout": (0, 86400),
            "console_lockout_attempts": (1, 1000),
            "console_lockout_seconds": (1, 86400 * 30),
            "console_invite_seconds": (60, 86400 * 90),
            "soft_bounces": (1, 1000),
            "soft_bounce_window": (60, 366 * 86400),
        }
        for name, (low, high) in limits.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(
                    f"{ENV_PREFIX}{name.upper()} must be between {low:g} and {high:g}, got {value}"
                )

    # ------------------------------------------------------------ derived values

    @property
    def embedded(self) -> bool:
        """True on SQLite: the laptop setup, where the development key is allowed."""
        return db.normalize_url(self.database_url).get_backend_name() == "sqlite"

    def secret_keys(self) -> tuple[str, ...]:
        """The token keys, newest last; the development key on SQLite when none is set."""
        keys = tuple(k.strip() for k in (self.secret_key or "").split(",") if k.strip())
        if keys:
            return keys
        if self.embedded:
            return (DEV_SECRET_KEY,)
        raise ConfigError(
            "NURTURE_SECRET_KEY is not set: tracking links need a secret key in production "
            "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )

    def smtp_config(self) -> SmtpConfig:
        """The parsed `smtp_url`; `ConfigError` when malformed."""
        from channels import ChannelConfigError, SmtpConfig

        if self.smtp_url is None:
            raise ConfigError("NURTURE_SMTP_URL is not set")
        try:
            return SmtpConfig.from_url(self.smtp_url, from_addr=self.sender)
        except ChannelConfigError as e:
            raise ConfigError(f"NURTURE_SMTP_URL: {e}") from e

    def dkim_signer(self) -> DkimSigner | None:
        """The keys of `dkim`, read from their files; None when none is configured."""
        from channels import ChannelConfigError, DkimSigner, load_key

        if not self.dkim:
            return None
        keys = []
        for entry in self.dkim:
            try:
                data = entry.keyfile.read_bytes()
            except OSError as e:
                raise ConfigError(
                    f"NURTURE_DKIM: cannot read the key file of {entry}: {e.strerror or e}"
                ) from e
            try:
                keys.append(load_key(entry.domain, entry.selector, data, entry.algorithm))
            except ChannelConfigError as e:
                raise ConfigError(f"NURTURE_DKIM: {e} (file {entry.keyfile})") from e
        return DkimSigner(keys)

    def sender_address(self) -> str:
        """The From of every email: `sender`, else the SMTP URL's ``from``, else a local one."""
        if self.sender:
            return self.sender
        if self.smtp_url is not None:
            configured = self.smtp_config().from_addr
            if configured:
                return str(configured)
        return DEFAULT_SENDER

    def throttle_storage(self) -> str:
        """Where the domain rates' windows are kept: `throttle_url`, else a Redis broker,
        else ``memory://`` (one process)."""
        if self.throttle_url is not None:
            return self.throttle_url
        broker = self.broker_url or ""
        if urlsplit(broker).scheme in ("redis", "rediss"):
            return broker
        return "memory://"

    def sender_domain(self) -> str:
        """The domain of the sender address: the right-hand side of every Message-ID."""
        address = parseaddr(self.sender_address())[1]
        return address.rpartition("@")[2].lower() or "localhost"

    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)


# ---------------------------------------------------------------- parsing

_INT_FIELDS = frozenset(
    {
        "worker_processes",
        "worker_threads",
        "batch_size",
        "send_concurrency",
        "max_attempts",
        "render_max_size",
        "console_lockout_attempts",
        "soft_bounces",
    }
)
_FLOAT_FIELDS = frozenset(
    {
        "lease_seconds",
        "shutdown_seconds",
        "scheduler_interval",
        "sweep_interval",
        "retry_seconds",
        "render_seconds",
        "statement_timeout",
        "console_lockout_seconds",
        "console_invite_seconds",
        "soft_bounce_window",
    }
)
_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_SPAN_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
"""``7d``, ``12h``: a span, for the settings in `_SPAN_FIELDS` (seconds otherwise)."""
_SPAN_FIELDS: Final = frozenset({"soft_bounce_window", "console_invite_seconds"})
_CAP = re.compile(r"^\s*(\d+)\s*(?:per|/)\s*(?:(\d+)\s*)?(hour|day|week|month)s?\s*$", re.I)


def parse_channels(text: str, where: str = "NURTURE_REQUIRE_CONSENT") -> tuple[str, ...]:
    """``email,sms`` as channel names; a name that is not a consent channel is refused."""
    names = tuple(dict.fromkeys(c.strip().lower() for c in text.split(",") if c.strip()))
    wrong = [n for n in names if n not in CONSENT_CHANNELS]
    if wrong:
        allowed = ", ".join(CONSENT_CHANNELS)
        raise ConfigError(f"{where}: {', '.join(map(repr, wrong))} is not a channel; use {allowed}")
    return names


def parse_cap(text: str, where: str = "NURTURE_GLOBAL_CAP") -> Cap:
    """``5 per week``, ``3 per 2 days``, ``1/day`` as a `Cap`."""
    match = _CAP.match(text)
    if match is None:
        raise ConfigError(f"{where} must read like '5 per week' or '2 per 3 days', got {text!r}")
    count, periods, unit = int(match.group(1)), int(match.group(2) or 1), match.group(3).lower()
    if periods < 1:
        raise ConfigError(f"{where}: the period must be at least one {unit}, got {text!r}")
    if count < 1:  # as the language refuses `cap 0 per week`: it would hold every touch forever
        raise ConfigError(f"{where}: a cap of 0 lets nothing through; unset it or allow 1 or more")
    if periods * CAP_PERIODS[unit] > MAX_CAP_PERIOD:
        raise ConfigError(f"{where}: the period must be at most a year, got {text!r}")
    return Cap(count, timedelta(seconds=periods * CAP_PERIODS[unit]))


def parse_dkim(text: str, where: str = "NURTURE_DKIM") -> tuple[DkimEntry, ...]:
    """``domain:selector:keyfile[:algorithm],...`` as entries; the files are read later."""
    entries = []
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        parts = item.split(":")
        algorithm = None
        if len(parts) == 4 and parts[3].strip().lower() in ("rsa", "ed25519"):
            algorithm = parts.pop().strip().lower()
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise ConfigError(
                f"{where}: {item!r} must read domain:selector:keyfile[:rsa|ed25519], "
                "as in acme.example:s2026:/etc/nurture/dkim.key"
            )
        domain, selector, keyfile = (p.strip() for p in parts)
        if "." not in domain or not re.fullmatch(r"[A-Za-z0-9.-]+", domain):
            raise ConfigError(f"{where}: {domain!r} in {item!r} is not a domain name")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", selector):
            raise ConfigError(f"{where}: the selector {selector!r} in {item!r} is not a DNS label")
        entries.append(DkimEntry(domain.lower(), selector, Path(keyfile), algorithm))
    return tuple(entries)


_RATE = re.compile(
    r"^\s*([A-Za-z0-9.-]+|\*)\s*=\s*(\d+)\s*(?:per|/)\s*(\d+)?\s*"
    r"(s|sec|second|m|min|minute|h|hour|d|day)s?\s*$",
    re.I,
)
RATE_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_domain_rates(text: str, where: str = "NURTURE_DOMAIN_RATES") -> tuple[DomainRate, ...]:
    """``qq.com=20/min,163.com=10/min,*=200/min`` as rates; ``3/10s``, ``500/hour`` too."""
    rates: dict[str, DomainRate] = {}
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        match = _RATE.match(item)
        if match is None:
            raise ConfigError(
                f"{where}: {item!r} must read domain=count/period, as in qq.com=20/min "
                "(periods: s, min, hour, day; * for every other domain)"
            )
        domain, count, periods = match.group(1).lower(), int(match.group(2)), match.group(3)
        if domain != "*" and "." not in domain:
            raise ConfigError(f"{where}: {domain!r} in {item!r} is not a domain name")
        if count < 1:
            raise ConfigError(f"{where}: {item!r} lets nothing through; allow 1 or more")
        if domain in rates:
            raise ConfigError(f"{where}: {domain} has two rates; keep one")
        seconds = int(periods or 1) * RATE_UNITS[match.group(4)[0].lower()]
        if not 1 <= seconds <= 86400:
            raise ConfigError(f"{where}: the period of {item!r} must be 1 s to a day")
        rates[domain] = DomainRate(domain, count, seconds)
    return tuple(rates.values())


def describe_cap(cap: Cap) -> str:
    """The words `parse_cap` reads back: ``5 per week``, ``3 per 2 days``."""
    seconds = int(cap.period.total_seconds())
    unit, size = next(
        ((u, n) for u, n in sorted(CAP_PERIODS.items(), key=lambda i: -i[1]) if seconds % n == 0),
        ("second", 1),
    )
    periods = seconds // size
    return f"{cap.count} per {unit}" if periods == 1 else f"{cap.count} per {periods} {unit}s"


def _parse(name: str, raw: str, where: str) -> Any:
    """One value from text (an environment variable), by the field's kind."""
    text = raw.strip()
    if name in _INT_FIELDS:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{where} must be a whole number, got {raw!r}") from None
    span = _SPAN.fullmatch(text.lower()) if name in _SPAN_FIELDS else None
    if span is not None:
        return float(span.group(1)) * _SPAN_UNITS[span.group(2)]
    if name in _FLOAT_FIELDS:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{where} must be a number of seconds, got {raw!r}") from None
    if name == "global_cap":
        return parse_cap(text, where)
    if name == "dkim":
        return parse_dkim(text, where)
    if name == "smtp_esp":
        return text.lower()
    if name == "ses_topic_arns":
        return tuple(a.strip() for a in text.split(",") if a.strip())
    if name == "competitor_domains":
        return tuple(d.strip().lower() for d in text.split(",") if d.strip())
    if name == "require_consent":
        return parse_channels(text, where)
    if name == "domain_rates":
        return parse_domain_rates(text, where)
    if name == "default_calling_code":
        return text.lstrip("+")
    if name == "outbox":
        return Path(text)
    if name == "templates":
        return tuple(Path(p) for p in text.split(os.pathsep) if p)
    return text


def _read_toml(path: Path) -> dict[str, Any]:
    """The settings in ``nurture.toml``: known keys only, each of the right kind."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from e
    known = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{path}: {key}"
        if key not in known:
            names = ", ".join(sorted(known))
            raise ConfigError(f"{path}: unknown setting {key!r} (known: {names})")
        values[key] = _toml_value(key, value, where)
    return values


def _naming_toml(error: ConfigError, toml: Path, keys: set[str]) -> ConfigError:
    """`error` naming the ``nurture.toml`` key, not the variable, when the value came from there."""
    message = str(error)
    for key in keys:
        variable = ENV_PREFIX + key.upper()
        if re.match(rf"{variable}\b", message):
            return ConfigError(f"{toml}: {key}{message[len(variable) :]}")
    return error


def _toml_value(key: str, value: Any, where: str) -> Any:
    if key in _INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
        return value
    if key in _SPAN_FIELDS and isinstance(value, str):
        return _parse(key, value, where)
    if key in _FLOAT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number of seconds, got {value!r}")
        return float(value)
    lists = (
        "templates",
        "competitor_domains",
        "dkim",
        "require_consent",
        "ses_topic_arns",
        "domain_rates",
    )
    if key in lists and isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of text")
        joined = os.pathsep.join(value) if key == "templates" else ",".join(value)
        return _parse(key, joined, where)
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be text, got {value!r}")
    return _parse(key, value, where)


def _split(where: str, value: str) -> SplitResult:
    """`value`'s parts; `ConfigError` for a bracketed host or a port that cannot be read."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- reading it checks it
    except ValueError as e:
        shown = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", value)  # no password in a message
        raise ConfigError(f"{where} is not a valid URL ({e}): {shown!r}") from None
    return parts


def _broker_url(value: str) -> None:
    where = "NURTURE_BROKER_URL"
    parts = _split(where, value)
    if parts.scheme not in BROKER_SCHEMES:
        raise ConfigError(
            f"{where} must be a Redis URL (redis://host:6379/0) or a RabbitMQ URL "
            f"(amqp://user:password@host:5672/vhost), got {parts.scheme!r}"
        )
    if parts.scheme in ("amqp", "amqps"):
        if not parts.hostname:
            raise ConfigError(f"{where}: a RabbitMQ URL needs a host (amqp://host:5672/)")
        return
    number = parts.path.strip("/")
    if parts.scheme != "unix" and number and not (number.isascii() and number.isdigit()):
        raise ConfigError(f"{where}: the database after the / must be a number, got {number!r}")


def _http_url(where: str, value: str) -> None:
    parts = _split(where, value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{where} must be an http(s) URL, got {value!r}")
