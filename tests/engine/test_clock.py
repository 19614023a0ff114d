"""The virtual clock moves only forward, and only when told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from nurture.engine import Clock, SystemClock, VirtualClock
from tests.engine.conftest import MONDAY


def test_virtual_clock_advances_by_timedelta(virtual_clock: VirtualClock) -> None:
    assert virtual_clock.now() == MONDAY
    assert virtual_clock.advance(timedelta(days=90)) == MONDAY + timedelta(days=90)
    assert virtual_clock.now() == MONDAY + timedelta(days=90)
    with pytest.raises(ValueError, match="backwards"):
        virtual_clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="backwards"):
        virtual_clock.advance_to(MONDAY)


def test_virtual_clock_keeps_utc_and_refuses_naive_times() -> None:
    clock = VirtualClock(datetime(2026, 3, 2, 8, tzinfo=timezone(timedelta(hours=8))))
    assert clock.now() == MONDAY and clock.now().tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        VirtualClock(datetime(2026, 3, 2))


def test_both_clocks_are_clocks() -> None:
    clocks: list[Clock] = [SystemClock(), VirtualClock(MONDAY)]
    assert all(c.now().tzinfo is UTC for c in clocks)
