"""The tracking service's settings: the runtime's `nurture.config.Settings`, with warnings.

`nurture serve` reads the same environment variables and ``nurture.toml`` as
the scheduler and the workers, so a key or a base URL set in one place is the
one every process uses (the worker signs tokens that the service reads). Of
them the service uses:

    NURTURE_DATABASE_URL        the database (default: the embedded ``sqlite:///nurture.db``)
    NURTURE_SECRET_KEY          the token key; several, comma-separated, newest last, while
                                retired keys' unsubscribe links are still out there
    NURTURE_API_KEY             the key of ``/api/*``; unset: the API answers 503
    NURTURE_BASE_URL            where the service is reached (``https://t.example.com``);
                                checked here, used by the renderer for the links it signs
    NURTURE_COMPETITOR_DOMAINS  comma-separated email domains that cleaning skips
    NURTURE_DEFAULT_CALLING_CODE  the country code of national phone numbers (``86``)
    NURTURE_SES_TOPIC_ARNS, NURTURE_SENDGRID_WEBHOOK_KEY, NURTURE_POSTMARK_WEBHOOK_AUTH,
    NURTURE_MAILGUN_SIGNING_KEY   the ESP webhooks (`nurture.tracking.esp_webhooks`)

The secret key. With PostgreSQL (production) a missing ``NURTURE_SECRET_KEY``
is a `ConfigError`: the service refuses to start rather than sign with a key
anyone can read. With the embedded SQLite database the service uses
`DEV_SECRET_KEY` and prints a loud warning on stderr, so a laptop demo works
with no configuration. Tokens signed with the development key are forgeable
by anyone who reads this file: never expose such a service.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, TextIO

from nurture import db
from nurture.config import Settings
from nurture.deliverability.esp import EspConfig
from nurture.store.cleaning import DEFAULT_RULES, LeadRules
from nurture.tokens import Clock, TokenSigner

MIN_KEY_LENGTH: Final = 32
"""Shorter keys get a warning: use at least 32 random characters."""


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    """What `nurture serve` needs to build the app."""

    database_url: str
    """The database, SQLite (embedded) or PostgreSQL (production)."""
    secret_keys: tuple[str, ...]
    """Token keys, newest last: signed with the newest, read with any."""
    api_key: str | None
    """The ``/api/*`` key; None disables the API (503)."""
    base_url: str
    """The public URL of the service (no trailing slash)."""
    lead_rules: LeadRules = DEFAULT_RULES
    """Cleaning lists for ``/api/leads``."""
    development_key: bool = False
    """True when `DEV_SECRET_KEY` stands in for a missing ``NURTURE_SECRET_KEY``."""
    esp: EspConfig = field(default_factory=EspConfig)
    """The ESP webhooks' keys (`nurture.tracking.esp_webhooks`)."""

    def signer(self, clock: Clock | None = None) -> TokenSigner:
        """A `TokenSigner` over the configured keys."""
        keys = list(self.secret_keys)
        return TokenSigner(keys) if clock is None else TokenSigner(keys, clock=clock)


def is_embedded(url: str) -> bool:
    """True for a SQLite database: the laptop setup, where a development key is allowed."""
    return db.normalize_url(url).get_backend_name() == "sqlite"


def load_config(
    env: Mapping[str, str] | None = None,
    *,
    warn: TextIO | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> TrackingConfig:
    """The settings from `env` (default: the process environment) over ``nurture.toml`` in
    `cwd`; warnings go to `warn`. Raises `ConfigError` naming the variable that is wrong."""
    return tracking_config(Settings.load(env, cwd), warn=warn)


def tracking_config(settings: Settings, *, warn: TextIO | None = None) -> TrackingConfig:
    """What the service needs of `settings`; warns about weak or missing keys."""
    warn = sys.stderr if warn is None else warn
    development = not (settings.secret_key or "").strip()
    keys = settings.secret_keys()  # ConfigError in production without a key
    if development:
        print(DEV_KEY_BANNER, file=warn)
    elif any(len(k) < MIN_KEY_LENGTH for k in keys):
        print(
            f"warning: NURTURE_SECRET_KEY: use {MIN_KEY_LENGTH} or more random characters",
            file=warn,
        )
    if settings.api_key is None:
        print(
            "warning: NURTURE_API_KEY is not set; /api/events and /api/leads answer 503", file=warn
        )
    return TrackingConfig(
        database_url=settings.database_url,
        secret_keys=keys,
        api_key=settings.api_key,
        base_url=settings.base_url.rstrip("/"),
        lead_rules=lead_rules(settings),
        development_key=development,
        esp=EspConfig.of(settings),
    )


def lead_rules(settings: Settings) -> LeadRules:
    """The cleaning rules of `settings`: the default lists, plus competitors and a calling code."""
    return LeadRules(
        competitor_domains=frozenset(settings.competitor_domains),
        default_calling_code=settings.default_calling_code,
    )


DEV_KEY_BANNER: Final = "\n".join(
    (
        "!" * 72,
        "WARNING: NURTURE_SECRET_KEY is not set; using the public development key.",
        "Anyone can forge tracking and unsubscribe links: fine on a laptop, never online.",
        "!" * 72,
    )
)
