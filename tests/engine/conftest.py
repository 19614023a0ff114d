"""Fixtures for the engine tests: a virtual clock that starts on a known Monday."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nurture.engine import VirtualClock

MONDAY = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
"""Monday 2 March 2026, 00:00 UTC (08:00 in Shanghai, 19:00 Sunday in New York)."""


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An aware UTC datetime, briefly."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """A clock at `MONDAY` that moves only when a test (or the simulator) moves it."""
    return VirtualClock(MONDAY)
