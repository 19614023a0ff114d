"""Per-receiving-domain email rates: QQ Mail, 163 and Gmail each throttle a sender.

``NURTURE_DOMAIN_RATES="qq.com=20/min,163.com=10/min,*=200/min"`` caps the
emails handed to SMTP for each receiving domain over a moving window (the
`limits` library's moving window: never more than the count in any window
of that length). The windows live where `Settings.throttle_storage` says:
Redis (the broker's, or ``NURTURE_THROTTLE_URL``), so every worker process
shares one count per domain; or this process's memory, for the embedded
default's one process.

A touch over its domain's rate is not handed to the channel: the executor
stores it ``deferred``, without using up one of its attempts, and its
enrollment is due again when the window lets one more through; each such
deferral is counted with its domain (``throttle_deferrals``, shown by
``nurture report deliveries --throttled``). Nothing is dropped.

Provider groups share one rate: a foxmail.com address counts against qq.com
(both are QQ Mail), googlemail.com against gmail.com.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from nurture.config import DomainRate, Settings

logger = logging.getLogger("nurture.runtime")

GROUPS: Final = {
    "foxmail.com": "qq.com",
    "vip.qq.com": "qq.com",
    "googlemail.com": "gmail.com",
    "vip.163.com": "163.com",
}
"""Receiving domains that are one mail provider, under the domain whose rate they share."""
KEY_PREFIX: Final = "nurture-throttle"
UNREACHABLE_WAIT: Final = 5.0
"""Seconds a touch waits when the rate store does not answer (deferred, never sent blind)."""


@dataclass(frozen=True, slots=True)
class Wait:
    """A touch over its domain's rate: which domain, and seconds until the window allows it."""

    domain: str
    seconds: float
    rate: str
    """The rate in words (``20 per 60 s``), for the delivery's log."""


def domain_of(address: str) -> str:
    """The rate group of an email address's domain: ``foxmail.com`` → ``qq.com``."""
    domain = address.rpartition("@")[2].strip().strip(">").lower()
    return GROUPS.get(domain, domain)


class Throttle:
    """The domain rates of one process, counted in a store its workers may share."""

    def __init__(self, rates: Sequence[DomainRate], storage: str = "memory://") -> None:
        self.rates: dict[str, RateLimitItem] = {
            r.domain: RateLimitItemPerSecond(r.count, r.seconds) for r in rates
        }
        options = {"key_prefix": KEY_PREFIX} if not storage.startswith("memory") else {}
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage, **options))

    @classmethod
    def from_settings(cls, settings: Settings) -> Throttle | None:
        """The configured throttle; None when no rate is set."""
        if not settings.domain_rates:
            return None
        storage = settings.throttle_storage()
        if storage.startswith("memory") and settings.broker_url is not None:
            logger.warning(
                "NURTURE_DOMAIN_RATES is counted in this process alone: with several workers "
                "each may send the whole rate; set NURTURE_THROTTLE_URL to a Redis to share it"
            )
        return cls(settings.domain_rates, storage)

    def take_all(self, addresses: Sequence[str]) -> list[Wait | None]:
        """`take` for each address of a batch. The k-th held back for a domain waits k // rate
        windows more than the first, so a backlog comes back spread over the windows it
        needs instead of all at the next one (where all but a rate's worth would wait
        again). When the store does not answer, every rated email of the batch waits a
        few seconds (one warning), and none goes out uncounted."""
        held: dict[str, int] = {}
        waits: list[Wait | None] = []
        down = False
        for address in addresses:
            domain = domain_of(address)
            item = self.rates.get(domain) or self.rates.get("*")
            if item is None:
                waits.append(None)
                continue
            words = f"{item.amount} per {item.get_expiry()} s"
            if not down:
                try:
                    seconds = self._take(item, domain)
                except Exception:
                    logger.warning("the throttle store does not answer; deferring", exc_info=True)
                    down = True
            if down:
                waits.append(Wait(domain, UNREACHABLE_WAIT, words))
                continue
            if seconds is None:
                waits.append(None)
                continue
            ahead = held.get(domain, 0)
            held[domain] = ahead + 1
            later = (ahead // item.amount) * item.get_expiry()
            waits.append(Wait(domain, seconds + later, words))
        return waits

    def take(self, address: str) -> Wait | None:
        """Take one send to `address`'s domain: None when it may go now (counted), else how
        long to wait (nothing counted)."""
        return self.take_all([address])[0]

    def _take(self, item: RateLimitItem, domain: str) -> float | None:
        """None: one send counted; else seconds until the window lets one more through."""
        if self.limiter.hit(item, domain):
            return None
        reset = self.limiter.get_window_stats(item, domain).reset_time
        return max(reset - time.time(), 0.05)
