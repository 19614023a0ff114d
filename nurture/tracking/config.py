"""The tracking service's settings, read from the environment.

    NURTURE_DATABASE_URL        the database (default: the embedded ``sqlite:///nurture.db``)
    NURTURE_SECRET_KEY          the token key; several, comma-separated, newest last, while
                                retired keys' unsubscribe links are still out there
    NURTURE_API_KEY             the key of ``/api/*``; unset: the API answers 503
    NURTURE_BASE_URL            where the service is reached (``https://t.example.com``);
                                checked here, used by the renderer for the links it signs
    NURTURE_COMPETITOR_DOMAINS  comma-separated email domains that cleaning skips
    NURTURE_DEFAULT_CALLING_CODE  the country code of national phone numbers (``86``)

The secret key. With PostgreSQL (production) a missing ``NURTURE_SECRET_KEY``
is a `ConfigError`: the service refuses to start rather than sign with a key
anyone can read. With the embedded SQLite database the service uses
`DEV_SECRET_KEY` and prints a loud warning on stderr, so a laptop demo works
with no configuration. The worker must sign with the same keys: it reads
them with `load_config` too, so both fall back alike. Tokens signed with the
development key are forgeable by anyone who reads this file: never expose
such a service.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, TextIO
from urllib.parse import urlsplit

from nurture import db
from nurture.store.leads import DEFAULT_RULES, LeadRules
from nurture.tokens import Clock, TokenSigner

DEV_SECRET_KEY: Final = "nurture-development-key-not-secret-do-not-use-in-production"
"""The key of the embedded mode when ``NURTURE_SECRET_KEY`` is unset; public, so forgeable."""

MIN_KEY_LENGTH: Final = 32
"""Shorter keys get a warning: use at least 32 random characters."""


class ConfigError(Exception):
    """Raised when the environment cannot configure the tracking service; says which variable."""


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    """What `nurture serve` needs to build the app."""

    database_url: str
    """The database, SQLite (embedded) or PostgreSQL (production)."""
    secret_keys: tuple[str, ...]
    """Token keys, newest last: signed with the newest, read with any."""
    api_key: str | None
    """The ``/api/*`` key; None disables the API (503)."""
    base_url: str | None
    """The public URL of the service, if configured."""
    lead_rules: LeadRules = DEFAULT_RULES
    """Cleaning lists for ``/api/leads``."""
    development_key: bool = False
    """True when `DEV_SECRET_KEY` stands in for a missing ``NURTURE_SECRET_KEY``."""

    def signer(self, clock: Clock | None = None) -> TokenSigner:
        """A `TokenSigner` over the configured keys."""
        keys = list(self.secret_keys)
        return TokenSigner(keys) if clock is None else TokenSigner(keys, clock=clock)


def is_embedded(url: str) -> bool:
    """True for a SQLite database: the laptop setup, where a development key is allowed."""
    return db.normalize_url(url).get_backend_name() == "sqlite"


def load_config(
    env: Mapping[str, str] | None = None, *, warn: TextIO | None = None
) -> TrackingConfig:
    """The settings from `env` (default: the process environment); warnings go to `warn`.

    Raises `ConfigError` naming the variable that is missing or wrong.
    """
    env = os.environ if env is None else env
    warn = sys.stderr if warn is None else warn
    url = env.get("NURTURE_DATABASE_URL") or db.DEFAULT_DATABASE_URL
    try:
        embedded = is_embedded(url)
    except Exception as e:  # sqlalchemy.exc.ArgumentError, or a bad driver name
        raise ConfigError(f"NURTURE_DATABASE_URL is not a database URL: {e}") from e
    keys, development = _secret_keys(env.get("NURTURE_SECRET_KEY", ""), embedded, warn)
    api_key = env.get("NURTURE_API_KEY", "").strip() or None
    if api_key is None:
        print(
            "warning: NURTURE_API_KEY is not set; /api/events and /api/leads answer 503", file=warn
        )
    return TrackingConfig(
        database_url=url,
        secret_keys=keys,
        api_key=api_key,
        base_url=_base_url(env.get("NURTURE_BASE_URL", "")),
        lead_rules=_lead_rules(env),
        development_key=development,
    )


def _secret_keys(raw: str, embedded: bool, warn: TextIO) -> tuple[tuple[str, ...], bool]:
    keys = tuple(k.strip() for k in raw.split(",")) if raw.strip() else ()
    if any(not k for k in keys):
        raise ConfigError("NURTURE_SECRET_KEY has an empty key in its comma-separated list")
    if keys:
        if any(len(k) < MIN_KEY_LENGTH for k in keys):
            print(
                f"warning: NURTURE_SECRET_KEY: use {MIN_KEY_LENGTH} or more random characters",
                file=warn,
            )
        return keys, False
    if not embedded:
        raise ConfigError(
            "NURTURE_SECRET_KEY is not set: tracking tokens need a secret key in production "
            "(for example: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    banner = "!" * 72
    print(
        f"{banner}\nWARNING: NURTURE_SECRET_KEY is not set; using the public development key.\n"
        "Anyone can forge tracking and unsubscribe links: fine on a laptop, never online.\n"
        f"{banner}",
        file=warn,
    )
    return (DEV_SECRET_KEY,), True


def _base_url(raw: str) -> str | None:
    url = raw.strip().rstrip("/")
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"NURTURE_BASE_URL must be an http(s) URL, got {raw!r}")
    return url


def _lead_rules(env: Mapping[str, str]) -> LeadRules:
    domains = frozenset(
        d.strip().lower() for d in env.get("NURTURE_COMPETITOR_DOMAINS", "").split(",") if d.strip()
    )
    code = env.get("NURTURE_DEFAULT_CALLING_CODE", "").strip().lstrip("+") or None
    if code is not None and not (code.isascii() and code.isdigit() and len(code) <= 3):
        raise ConfigError(f"NURTURE_DEFAULT_CALLING_CODE must be 1 to 3 digits, got {code!r}")
    return LeadRules(competitor_domains=domains, default_calling_code=code)
