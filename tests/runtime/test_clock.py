"""The accelerated clock, durations, and how often ``nurture run`` polls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nurture.engine.clock import SystemClock
from nurture.runtime.clock import AcceleratedClock, span
from nurture.runtime.embedded import parse_duration, poll_interval

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Ticks:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_day_passes_each_second_at_86400() -> None:
    ticks = Ticks()
    clock = AcceleratedClock(86400, START, monotonic=ticks)
    ticks.now += 1.5
    assert clock.now() == START + timedelta(days=1, hours=12)
    assert clock.real_seconds(timedelta(days=3)) == 3


def test_a_paused_clock_stands_until_it_goes() -> None:
    ticks = Ticks()
    clock = AcceleratedClock(3600, START, running=False, monotonic=ticks)
    ticks.now += 10
    assert clock.now() == START
    clock.go()
    ticks.now += 2
    assert clock.now() == START + timedelta(hours=2)


def test_a_halted_clock_stands_where_it_was() -> None:
    ticks = Ticks()
    clock = AcceleratedClock(3600, START, monotonic=ticks)
    ticks.now += 3
    clock.halt()
    ticks.now += 100
    assert clock.now() == START + timedelta(hours=3)


def test_real_durations_scale_with_the_speed() -> None:
    assert span(SystemClock(), 300) == timedelta(seconds=300)
    assert span(AcceleratedClock(60, START), 300) == timedelta(hours=5)


def test_speed_must_be_positive() -> None:
    with pytest.raises(ValueError, match="speed must be positive"):
        AcceleratedClock(0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("3d", timedelta(days=3)),
        ("2w", timedelta(weeks=2)),
        ("3 days", timedelta(days=3)),
        ("1.5 hours", timedelta(minutes=90)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_a_bad_duration_says_what_to_write() -> None:
    with pytest.raises(ValueError, match=r"write 90s, 15m, 2h, 3d or 2w"):
        parse_duration("soon")


def test_a_duration_past_the_calendar_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^'99999999999999999999d' is longer than 100 years$"):
        parse_duration("99999999999999999999d")


def test_polls_see_every_window_however_fast_the_clock() -> None:
    assert poll_interval(1.0, 1) == 1.0
    assert poll_interval(1.0, 86400) == 0.05  # 72 minutes of campaign time between polls
    assert poll_interval(1.0, 3600) == pytest.approx(600 / 3600)
