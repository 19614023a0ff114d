"""Local time for sends and waits: send windows, `wait until`, deferral to the next opening.

All arithmetic is done on local dates and converted to UTC per candidate day,
so daylight-saving changes move the UTC instant, not the local wall time: a
window opening at 09:00 New York time opens at 09:00 in July and in January.
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from dsl.graph import Json
from nurture.engine.state import LeadView


@dataclass(frozen=True, slots=True)
class Window:
    """A send window: on `days` (Monday 0), from `start` to `end` local time in `zone`.

    `zone` is `"lead"` (the lead's own zone), an IANA name, or `"UTC"`. An end
    at or before the start is read as a window that runs past midnight (the
    checker refuses those in source, but stored graphs are read defensively).
    """

    days: frozenset[int]
    start: time
    end: time
    zone: str = "UTC"

    @classmethod
    def from_json(cls, data: dict[str, Json]) -> Window:
        return cls(
            frozenset(int(d) for d in data.get("days") or range(7)),
            parse_hhmm(str(data.get("start", "00:00"))),
            parse_hhmm(str(data.get("end", "00:00"))),
            str(data.get("zone") or "UTC"),
        )

    def interval(self, day: date, tz: tzinfo) -> tuple[datetime, datetime]:
        """The window opened on local `day`, as UTC instants."""
        return _interval(self.start, self.end, day, tz)


@functools.lru_cache(maxsize=4096)
def _interval(start: time, end: time, day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """`Window.interval`, kept: sends check the same few days in the same few zones."""
    close_day = day if end > start else day + timedelta(days=1)
    return local_instant(day, start, tz), local_instant(close_day, end, tz)


def parse_hhmm(text: str) -> time:
    hours, _, minutes = text.partition(":")
    return time(int(hours), int(minutes or 0))


@functools.lru_cache(maxsize=256)
def zone_named(name: str | None) -> tzinfo:
    """The time zone by IANA name; UTC when missing or unknown (never raises)."""
    if not name or name.upper() == "UTC":
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return UTC


def lead_zone(lead: LeadView) -> tzinfo:
    return zone_named(lead.time_zone)


def window_zone(window: Window, lead: LeadView) -> tzinfo:
    return lead_zone(lead) if window.zone == "lead" else zone_named(window.zone)


def wait_zone(lead: LeadView, window: dict[str, Json] | None) -> tzinfo:
    """The zone of `wait until`: the lead's; else the window's named zone; else UTC."""
    if lead.time_zone is not None:
        return lead_zone(lead)
    named = (window or {}).get("zone")
    return zone_named(str(named)) if named and named != "lead" else UTC


def local_instant(day: date, at: time, tz: tzinfo) -> datetime:
    """Local `day` at `at` in `tz`, as UTC.

    A time the clocks skip (02:30 on a spring-forward night) is read with the
    offset from before the change, so it lands as far past the gap as it was
    into it (03:30); a repeated time (autumn) is its first occurrence. That is
    `zoneinfo`'s `fold=0`, what most calendars do.
    """
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def in_window(moment: datetime, window: Window, tz: tzinfo) -> bool:
    return next_opening(moment, window, tz) == moment


def next_opening(moment: datetime, window: Window, tz: tzinfo) -> datetime:
    """`moment` if the window is open then, else the next moment it opens."""
    today = moment.astimezone(tz).date()
    for opens, closes in _openings(window.start, window.end, window.days, tz, today):
        if moment < closes:
            return max(moment, opens)
    return moment  # a window with no days: nothing to wait for


@functools.lru_cache(maxsize=4096)
def _openings(
    start: time, end: time, days: frozenset[int], tz: tzinfo, today: date
) -> tuple[tuple[datetime, datetime], ...]:
    """The window's openings on its days from yesterday (it may run past midnight) to today + 8.

    Kept: every send checks the openings around its day, and the leads of a
    run share a few days and zones. Eight days ahead reach every weekday.
    """
    found = []
    for offset in _FROM_YESTERDAY:
        day = today + offset
        if day.weekday() in days:
            found.append(_interval(start, end, day, tz))
    return tuple(found)


_FROM_YESTERDAY = tuple(timedelta(days=offset) for offset in range(-1, 9))


def next_weekday_at(moment: datetime, weekday: int | None, at: time, tz: tzinfo) -> datetime:
    """The next local `weekday` at `at` strictly after `moment` (any day when weekday is None)."""
    today = moment.astimezone(tz).date()
    for offset in range(9):
        day = today + timedelta(days=offset)
        if weekday is not None and day.weekday() != weekday:
            continue
        candidate = local_instant(day, at, tz)
        if candidate > moment:
            return candidate
    raise AssertionError("unreachable: every weekday occurs within 9 days")
