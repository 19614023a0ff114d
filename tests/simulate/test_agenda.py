"""The simulator's agenda pops wake-ups by moment, then in the order they were scheduled."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from nurture.simulate.agenda import Agenda

START = datetime(2026, 1, 5, tzinfo=UTC)


def test_wake_ups_come_out_by_moment_then_by_order_of_scheduling() -> None:
    # Given wake-ups at random moments (microseconds apart, many at the same moment)
    rng = random.Random(3)
    agenda = Agenda(START)
    moments = [
        START + timedelta(seconds=rng.randrange(50), microseconds=rng.randrange(3))
        for _ in range(500)
    ]
    keys = [agenda.push(at, 0, index) for index, at in enumerate(moments)]

    # When they are popped
    popped = [agenda.pop() for _ in range(len(agenda))]

    # Then they come as sorting by (moment, index) says, each with its ticket
    expected = sorted(range(len(moments)), key=lambda i: (moments[i], i))
    assert [entry[2] for _, entry in popped] == expected
    assert [key for key, _ in popped] == [keys[i] for i in expected]
    assert agenda.first() is None


def test_a_moments_own_key_sorts_before_its_wake_ups_and_after_earlier_ones() -> None:
    agenda = Agenda(START)
    at = START + timedelta(days=3)
    agenda.push(at, 0, "due")
    assert agenda.key(at - timedelta(microseconds=1)) < agenda.key(at) < (agenda.first() or 0)
