"""Delivery keys and the Message-ID derived from them.

A touch is identified by (enrollment, step, iteration): the unique key of its
delivery row. The Message-ID is a hash of that key under the sender's domain,
so a retried job builds the very same message, and a receiver (or a test)
can tell a resend from a new touch.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple


class Key(NamedTuple):
    """The unique key of a delivery row."""

    enrollment: int
    step: str
    iteration: int


def message_id(key: Key, domain: str) -> str:
    """``<32 hex characters@domain>``, the same for the same key and domain."""
    text = f"nurture:{key.enrollment}:{key.step}:{key.iteration}"
    return f"<{hashlib.sha256(text.encode()).hexdigest()[:32]}@{domain}>"
