"""Frequency caps: a sliding window over sends; over the cap a touch waits, never drops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nurture.engine import Cap, LeadView, Limits, SentTouch, VirtualClock, next_send_time
from tests.engine.conftest import MONDAY
from tests.engine.sim import campaign, simulate

DAY = timedelta(days=1)
WEEK = timedelta(weeks=1)

FIVE_DAILY = """
campaign "Busy"
  enroll when lead created
  cap 3 per week
  send email "t1"
  wait 1 day
  send email "t2"
  wait 1 day
  send email "t3"
  wait 1 day
  send email "t4"
  wait 1 day
  send email "t5"
"""


def test_the_fourth_of_five_daily_touches_waits_for_the_first_to_leave_the_week(
    virtual_clock: VirtualClock,
) -> None:
    # Given a campaign capped at 3 per week with five touches one day apart
    # When a lead runs through it
    run = simulate(campaign(FIVE_DAILY), LeadView("L"), virtual_clock, timedelta(days=30))

    # Then t1..t3 go on days 0..2, t4 waits until t1 is 7 days old (day 7),
    # and t5 (due day 8) fits: only t3 and t4 are within (day 1, day 8]
    assert [(t - MONDAY) / DAY for t, _ in run.sends()] == [0, 1, 2, 7, 8]
    assert run.templates() == ["t1", "t2", "t3", "t4", "t5"]


def test_a_global_cap_counts_other_campaigns_sends(virtual_clock: VirtualClock) -> None:
    # Given two sends from another campaign this week and a global cap of 2 per week
    history = [SentTouch(MONDAY - 3 * DAY, "Other"), SentTouch(MONDAY - DAY, "Other")]
    graph = campaign('campaign "One"\n  enroll when lead created\n  send email "x"\n')

    # When this campaign's only touch is due
    run = simulate(
        graph,
        LeadView("L"),
        virtual_clock,
        timedelta(days=30),
        history=history,
        global_cap=Cap(2, WEEK),
    )

    # Then it waits until the older of the two leaves the week
    assert [t for t, _ in run.sends()] == [MONDAY + 4 * DAY]


def test_release_is_the_moment_the_oldest_counted_send_leaves() -> None:
    cap = Cap(2, WEEK)
    sends = [MONDAY, MONDAY + DAY, MONDAY + 2 * DAY]
    at = MONDAY + 3 * DAY
    assert cap.release(sends, at) == MONDAY + DAY + WEEK
    assert cap.release(sends[:1], at) == at
    # a send exactly one period old no longer counts
    assert cap.release([MONDAY, MONDAY + DAY], MONDAY + WEEK) == MONDAY + WEEK


def test_a_zero_cap_keeps_the_touch_parked_but_never_drops_it() -> None:
    limits = Limits.build(None, UTC, [Cap(0, DAY)], [], None, [])
    when, why = next_send_time(MONDAY, limits)
    assert when > MONDAY and why == "cap"


def test_a_cap_release_that_falls_outside_the_window_moves_to_the_next_opening() -> None:
    from nurture.engine import Window

    window = Window.from_json({"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "18:00"})
    # three sends last Monday-Wednesday at 17:00; the cap frees up Monday 17:00, still open
    sends = [MONDAY - WEEK + d * DAY + timedelta(hours=17) for d in range(3)]
    limits = Limits.build(window, UTC, [Cap(3, WEEK)], sends, None, sends)
    assert next_send_time(MONDAY + timedelta(hours=10), limits) == (
        MONDAY + timedelta(hours=17),
        "cap",
    )
    # three sends last Saturday hold a Friday touch until Saturday, when the window is shut:
    # it goes at the next opening, Monday 09:00
    saturday = MONDAY - 2 * DAY - WEEK
    weekend = [saturday + timedelta(hours=h) for h in (10, 11, 12)]
    limits = Limits.build(window, UTC, [Cap(3, WEEK)], weekend, None, weekend)
    friday_ten = MONDAY - 3 * DAY + timedelta(hours=10)
    assert next_send_time(friday_ten, limits) == (datetime(2026, 3, 2, 9, tzinfo=UTC), "cap")
