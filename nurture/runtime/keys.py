"""Delivery keys and the Message-ID derived from them.

A touch is identified by (enrollment, step, iteration): the unique key of its
delivery row. The Message-ID is an HMAC of that key under the newest secret
key (``NURTURE_SECRET_KEY``), at the sender's domain: a retried job builds the
very same message, a receiver (or a test) can tell a resend from a new touch,
and a stranger cannot work one out, so a bounce or complaint report that
quotes one saw our message (`nurture.deliverability` maps reports by it).
Rotating the key changes the Message-ID of touches not sent yet; their
reports still map by the signed return path and the ESPs' delivery ids.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import NamedTuple


class Key(NamedTuple):
    """The unique key of a delivery row."""

    enrollment: int
    step: str
    iteration: int


def message_id(key: Key, domain: str, secret: str) -> str:
    """``<32 hex characters@domain>``, the same for the same key, domain and secret."""
    text = f"nurture:{key.enrollment}:{key.step}:{key.iteration}"
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return f"<{digest[:32]}@{domain}>"
