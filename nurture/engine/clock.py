"""Where *now* comes from: the system clock in production, a virtual one in tests.

The decision core takes `now` as an argument; only the code around it asks a
`Clock`. A `VirtualClock` advances by `timedelta`, so a 90-day campaign runs
in milliseconds and a test says exactly when things happen.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from nurture.engine.state import utc


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, aware, in UTC."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A clock that moves only when told to, and never backwards."""

    def __init__(self, start: datetime) -> None:
        self._now = utc(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by `delta`; return the new now."""
        if delta < timedelta(0):
            raise ValueError(f"a clock does not go backwards (advance by {delta})")
        self._now += delta
        return self._now

    def advance_to(self, moment: datetime) -> datetime:
        """Move forward to `moment` (staying put is fine; going back is an error)."""
        moment = utc(moment)
        if moment < self._now:
            raise ValueError(f"a clock does not go backwards ({self._now} to {moment})")
        self._now = moment
        return self._now

    def __repr__(self) -> str:
        return f"VirtualClock({self._now.isoformat()})"
