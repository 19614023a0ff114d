"""Signed VERP return paths: one envelope sender per delivery, so a bounce names its delivery.

With ``NURTURE_BOUNCE_DOMAIN`` set, every email's MAIL FROM (which the
receiving server turns into the Return-Path, and sends its DSNs to) is

    bounce+<delivery id>.<signature>@<bounce domain>

The signature is the first 13 characters of an HMAC-SHA256 of the delivery id
under the newest ``NURTURE_SECRET_KEY``, in lower-case base32: mail servers may
fold a local part's case, and 65 bits are plenty against guessing. Older keys
still verify, so a key rotation does not orphan the bounces of mail already
sent. Anything else at the bounce domain (a forged id, a signature that does
not match, a plain address) is refused with the reason, and nothing is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from nurture.config import Settings

PREFIX: Final = "bounce"
SIGNATURE_LENGTH: Final = 13
_LOCAL = re.compile(rf"{PREFIX}\+([0-9]{{1,18}})\.([a-z2-7]{{{SIGNATURE_LENGTH}}})")


class VerpError(ValueError):
    """An address that is not one of our return paths; the message says why."""


def _signature(key: str, delivery_id: int) -> str:
    digest = hmac.new(key.encode(), f"verp:{delivery_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:SIGNATURE_LENGTH]


@dataclass(frozen=True, slots=True)
class Verp:
    """Makes and reads return paths at `domain`, signed with `keys` (newest last)."""

    domain: str
    keys: Sequence[str]

    def address(self, delivery_id: int) -> str:
        """The return path of delivery `delivery_id`."""
        return f"{PREFIX}+{delivery_id}.{_signature(self.keys[-1], delivery_id)}@{self.domain}"

    def delivery_id(self, address: str) -> int:
        """The delivery a return path names; `VerpError` saying why when it names none."""
        text = address.strip().strip("<>").strip()
        local, at, domain = text.rpartition("@")
        if not at:
            raise VerpError(f"{text!r} is not an email address")
        if domain.lower() != self.domain.lower():
            raise VerpError(f"{text!r} is not at the bounce domain {self.domain}")
        match = _LOCAL.fullmatch(local.lower())
        if match is None:
            raise VerpError(
                f"{text!r} is not a return path of ours ({PREFIX}+<delivery>.<signature>@...)"
            )
        delivery_id, given = int(match.group(1)), match.group(2)
        if not any(hmac.compare_digest(_signature(k, delivery_id), given) for k in self.keys):
            raise VerpError(f"{text!r} has a signature that does not match delivery {delivery_id}")
        return delivery_id


def verp_of(settings: Settings) -> Verp | None:
    """The return paths ``NURTURE_BOUNCE_DOMAIN`` asks for, signed with the secret keys;
    None when it is unset (MAIL FROM stays the From address)."""
    if settings.bounce_domain is None:
        return None
    return Verp(settings.bounce_domain.lower(), settings.secret_keys())
