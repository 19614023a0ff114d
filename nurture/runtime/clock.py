"""Clocks for the runtime: the engine's system and virtual clocks, and an accelerated one.

`AcceleratedClock` runs `speed` times faster than the wall clock from a start
moment, so ``nurture run --speed 86400`` shows a day of campaign time per
second: waits end, windows open, retries come due. Durations meant in real
time (a lease, a retry's delay) are scaled with `span` so that they take the
same wall-clock time whatever the speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from nurture.engine.clock import Clock, SystemClock, VirtualClock
from nurture.engine.state import utc

__all__ = ["AcceleratedClock", "Clock", "SystemClock", "VirtualClock", "span"]


class AcceleratedClock:
    """`speed` seconds of campaign time per real second, from `start` (default: now).

    With ``running=False`` the clock stands at `start` until `go` is called,
    so setting up (migrations, deploys) takes no campaign time; `halt` stops it
    again for the winding down.
    """

    def __init__(
        self,
        speed: float,
        start: datetime | None = None,
        *,
        running: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = float(speed)
        self.start = utc(start) if start is not None else datetime.now(UTC)
        self._monotonic = monotonic
        self._origin: float | None = monotonic() if running else None

    def go(self) -> None:
        """Start the clock (if it was made with ``running=False``)."""
        if self._origin is None:
            self._origin = self._monotonic()

    def halt(self) -> None:
        """Stop the clock where it stands, so winding down (finishing the queued work) takes
        no campaign time: at 86400x a second of shutdown would otherwise be another day."""
        self.start, self._origin = self.now(), None

    def now(self) -> datetime:
        if self._origin is None:
            return self.start
        return self.start + timedelta(seconds=(self._monotonic() - self._origin) * self.speed)

    def real_seconds(self, delta: timedelta) -> float:
        """How long `delta` of campaign time takes on the wall clock."""
        return delta.total_seconds() / self.speed

    def __repr__(self) -> str:
        return f"AcceleratedClock(speed={self.speed:g}, now={self.now().isoformat()})"


def span(clock: Clock, seconds: float) -> timedelta:
    """`seconds` of real time, in the clock's time (longer on an accelerated clock)."""
    return timedelta(seconds=seconds * float(getattr(clock, "speed", 1.0)))
