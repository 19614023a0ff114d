"""The simulator's wake-ups in time order: a heap of integer keys.

Every wake-up gets a key that packs its moment (microseconds since the run's
start) above a sequence number, so keys order exactly as (moment, order of
scheduling) do, and two keys never tie. A heap of plain ints is cheaper to
keep than a heap of `(datetime, seq, ...)` tuples: each push and pop compares
about log2(n) pairs, and comparing two tuples compares their datetimes twice;
with a hundred thousand leads the heap holds a few hundred thousand entries,
and the smaller comparisons also touch less memory. What each key wakes is
kept beside the heap, in a dict.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta
from typing import Any

MICROSECOND = timedelta(microseconds=1)
SEQUENCE = 1 << 40
"""Room for the sequence numbers under one microsecond: more wake-ups than any run schedules."""

WAKE, NUDGE, EVENT, SWEEP, DRIFT = 0, 1, 2, 3, 4
"""The kinds of wake-up: an enrollment due, an enrollment nudged early, the lead's event,
its inactivity sweep, its segment check when time alone may change a segment."""

Entry = tuple[datetime, int, Any, Any]
"""What a wake-up is: its moment, its kind, its subject and a payload."""


class Agenda:
    """Wake-ups popped earliest first, in the order they were scheduled when at the same moment."""

    __slots__ = ("entries", "heap", "seq", "start")

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.heap: list[int] = []
        self.entries: dict[int, Entry] = {}
        self.seq = 0

    def __len__(self) -> int:
        return len(self.heap)

    def key(self, at: datetime, seq: int = 0) -> int:
        """The key of the `seq`-th wake-up at `at`; `key(at)` sorts before every wake-up at `at`."""
        return (at - self.start) // MICROSECOND * SEQUENCE + seq

    def push(self, at: datetime, kind: int, subject: Any, payload: Any = None) -> int:
        """Schedule a wake-up; its key is also its ticket (see `Enrollment.ticket`)."""
        self.seq += 1
        key = (at - self.start) // MICROSECOND * SEQUENCE + self.seq
        self.entries[key] = (at, kind, subject, payload)
        heapq.heappush(self.heap, key)
        return key

    def first(self) -> int | None:
        """The key of the earliest wake-up, if any."""
        return self.heap[0] if self.heap else None

    def pop(self) -> tuple[int, Entry]:
        """The earliest wake-up and its key."""
        key = heapq.heappop(self.heap)
        return key, self.entries.pop(key)

    def clear(self) -> None:
        """Forget every wake-up (the sequence goes on, so later keys stay unique)."""
        self.heap.clear()
        self.entries.clear()
