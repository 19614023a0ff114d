"""Send windows and `wait until` in the lead's local time."""

from __future__ import annotations

from datetime import UTC, time

from nurture.engine import LeadView, Window, next_opening, next_weekday_at, zone_named
from nurture.engine.calendar import in_window, lead_zone, window_zone
from tests.engine.conftest import utc

SHANGHAI = zone_named("Asia/Shanghai")
NEW_YORK = zone_named("America/New_York")
WEEKDAYS = Window.from_json(
    {"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "18:00", "zone": "lead"}
)


def test_inside_the_window_a_touch_goes_now() -> None:
    # Monday 10:00 in Shanghai is 02:00 UTC
    assert next_opening(utc(2026, 3, 2, 2), WEEKDAYS, SHANGHAI) == utc(2026, 3, 2, 2)
    assert in_window(utc(2026, 3, 2, 2), WEEKDAYS, SHANGHAI)


def test_before_the_window_a_touch_waits_for_the_opening_that_day() -> None:
    # Monday 08:00 Shanghai -> 09:00 Shanghai (01:00 UTC)
    assert next_opening(utc(2026, 3, 2, 0), WEEKDAYS, SHANGHAI) == utc(2026, 3, 2, 1)


def test_after_the_window_a_touch_waits_for_the_next_day() -> None:
    # Monday 18:00 Shanghai is closed (the end is exclusive) -> Tuesday 09:00
    assert next_opening(utc(2026, 3, 2, 10), WEEKDAYS, SHANGHAI) == utc(2026, 3, 3, 1)


def test_on_friday_night_a_touch_waits_for_monday() -> None:
    # Friday 6 March 20:00 EST -> Monday 9 March 09:00 EDT (13:00 UTC; DST began Sunday)
    assert next_opening(utc(2026, 3, 7, 1), WEEKDAYS, NEW_YORK) == utc(2026, 3, 9, 13)
    assert not in_window(utc(2026, 3, 7, 1), WEEKDAYS, NEW_YORK)


def test_a_window_with_no_days_holds_nothing_back() -> None:
    never = Window(frozenset(), time(9), time(18))
    assert next_opening(utc(2026, 3, 2), never, UTC) == utc(2026, 3, 2)


def test_a_stored_window_that_crosses_midnight_is_read_as_overnight() -> None:
    night = Window(frozenset({0}), time(22), time(6))
    # Monday 23:00 is open; Tuesday 05:00 still belongs to Monday's window; Tuesday 07:00 waits
    assert in_window(utc(2026, 3, 2, 23), night, UTC)
    assert in_window(utc(2026, 3, 3, 5), night, UTC)
    assert next_opening(utc(2026, 3, 3, 7), night, UTC) == utc(2026, 3, 9, 22)


def test_zones_come_from_the_lead_the_window_or_utc() -> None:
    lead = LeadView("L", {"time_zone": "Asia/Shanghai"})
    assert lead_zone(lead) is SHANGHAI
    assert window_zone(WEEKDAYS, lead) is SHANGHAI
    named = Window.from_json(
        {"days": [0], "start": "09:00", "end": "10:00", "zone": "Europe/Paris"}
    )
    assert window_zone(named, lead) is zone_named("Europe/Paris")
    assert lead_zone(LeadView("L", {"time_zone": "Mars/Olympus"})) is UTC
    assert lead_zone(LeadView("L")) is UTC


def test_next_weekday_at_is_strictly_after_now() -> None:
    tuesday_ten_shanghai = utc(2026, 3, 3, 2)
    assert next_weekday_at(utc(2026, 3, 2), 1, time(10), SHANGHAI) == tuesday_ten_shanghai
    assert next_weekday_at(tuesday_ten_shanghai, 1, time(10), SHANGHAI) == utc(2026, 3, 10, 2)
    # no weekday: the next 10:00 of any day
    assert next_weekday_at(tuesday_ten_shanghai, None, time(10), SHANGHAI) == utc(2026, 3, 4, 2)


def test_wait_until_uses_the_leads_zone_else_the_windows_named_zone() -> None:
    from nurture.engine.calendar import wait_zone

    paris = {"days": [0], "start": "09:00", "end": "10:00", "zone": "Europe/Paris"}
    assert wait_zone(LeadView("L", {"time_zone": "Asia/Shanghai"}), paris) is SHANGHAI
    assert wait_zone(LeadView("L"), paris) is zone_named("Europe/Paris")
    assert wait_zone(LeadView("L"), {"zone": "lead"}) is UTC
    assert wait_zone(LeadView("L"), None) is UTC
