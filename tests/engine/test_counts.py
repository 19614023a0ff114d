"""Counting conditions: `event "x" count >= 3 within 7 days` and the like, in the pure core.

Outside a waiting branch a count is the events of the last W; in a waiting
branch it is the peak over the wait, known as soon as no later event can
change it. Triggers count as of the event that arrives. Brute-force
references (every hour of the wait) check the peak.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nurture.engine import Context, DeliveryKey, Event, LeadView, Refs, VirtualClock, truth
from nurture.engine.predicates import compile_condition
from nurture.engine.state import Delivered
from nurture.engine.triggers import Candidate, EventOccurred, PastEnrollment, fires, should_enroll
from tests.engine.conftest import MONDAY
from tests.engine.sim import campaign, simulate

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
LEAD = LeadView("L1", {})
OPS = ("==", "!=", ">=", "<=", ">", "<")


def visits(count: dict[str, Any], within: int | None = 7 * 86400) -> dict[str, Any]:
    return {"op": "event", "name": "page_viewed", "within": within, "count": count}


def at_least(n: int, within: int | None = 7 * 86400) -> dict[str, Any]:
    return visits({"cmp": ">=", "n": n}, within)


def views(*days: float) -> list[Event]:
    return [Event("page_viewed", MONDAY + timedelta(days=d)) for d in days]


def answer(cond: dict[str, Any], events: list[Event], now: datetime, **more: Any) -> Any:
    """The interpreter's answer, checked against the compiled predicate's."""
    ctx = Context(LEAD, events, now, **more)
    found = truth(cond, ctx)
    assert compile_condition(cond).test(ctx) is found
    return found


# ---------------------------------------------------------------- outside a wait


def test_a_count_with_a_window_counts_the_events_of_the_last_window() -> None:
    # Given page views on days 0, 2, 5 and 9
    events = views(0, 2, 5, 9)

    # Then on day 9 the last 7 days hold three of them (days 2, 5, 9), on day 13 two
    assert answer(at_least(3), events, MONDAY + 9 * DAY) is True
    assert answer(at_least(3), events, MONDAY + 13 * DAY) is False
    # And events after now do not count yet: on day 5 the week holds three (0, 2, 5)
    assert answer(at_least(3), events, MONDAY + 5 * DAY) is True
    assert answer(at_least(3), events, MONDAY + 4 * DAY) is False


@pytest.mark.parametrize(
    ("cmp", "n", "expected"),
    [
        (">=", 3, True),
        (">", 3, False),
        ("==", 3, True),
        ("!=", 3, False),
        ("<", 4, True),
        ("<=", 2, False),
    ],
)
def test_every_comparison_compares_the_count(cmp: str, n: int, expected: bool) -> None:
    # Given three page views in the last week and one long before
    events = views(-30, 1, 2, 3)
    assert answer(visits({"cmp": cmp, "n": n}), events, MONDAY + 4 * DAY) is expected


def test_without_a_window_every_event_so_far_counts() -> None:
    events = views(-300, -30, 1)
    assert answer(at_least(3, within=None), events, MONDAY + 2 * DAY) is True
    assert answer(at_least(3, within=None), events, MONDAY) is False


def test_opens_are_counted_over_every_message_of_the_enrollment_or_of_one_named_message() -> None:
    # Given an enrollment that sent two messages, opened twice and once, and another
    # enrollment's message opened three times
    first, second = DeliveryKey(1, "n1", "n1"), DeliveryKey(1, "n3", "n3")
    elsewhere = DeliveryKey(2, "n1", "n1")
    events = [
        Event("opened", MONDAY + HOUR, delivery=first),
        Event("opened", MONDAY + 2 * HOUR, delivery=first),
        Event("opened", MONDAY + DAY, delivery=second),
        *(Event("opened", MONDAY + d * HOUR, delivery=elsewhere) for d in (1, 2, 3)),
    ]
    refs = Refs(
        1,
        last=Delivered("n3", "n3", MONDAY + DAY),
        named={"intro": Delivered("n1", "n1", MONDAY)},
    )
    now = MONDAY + 2 * DAY

    def opened(n: int, message: str | None = None) -> dict[str, Any]:
        count = {"cmp": ">=", "n": n}
        return {"op": "opened", "message": message, "link": None, "within": None, "count": count}

    # Then in the enrollment, a bare count takes all its messages (3), not the other one's
    assert answer(opened(3), events, now, refs=refs) is True
    assert answer(opened(4), events, now, refs=refs) is False
    # And a named message its own opens (2)
    assert answer(opened(2, "intro"), events, now, refs=refs) is True
    assert answer(opened(3, "intro"), events, now, refs=refs) is False
    # And outside an enrollment (scoring, segments) every open of the lead counts (6)
    assert answer(opened(6), events, now) is True


def test_clicks_count_only_those_on_the_named_link() -> None:
    events = [
        Event("clicked", MONDAY + HOUR, link="https://x.io/download"),
        Event("clicked", MONDAY + 2 * HOUR, link="https://x.io/download"),
        Event("clicked", MONDAY + 3 * HOUR, link="https://x.io/pricing"),
    ]
    cond = {"op": "clicked", "message": None, "link": "download", "within": 86400}
    assert answer({**cond, "count": {"cmp": "==", "n": 2}}, events, MONDAY + DAY) is True


# ---------------------------------------------------------------- in a waiting branch


def test_a_waiting_count_holds_the_moment_the_third_event_of_some_week_arrives() -> None:
    # Given a branch reached on day 0 that waits 7 days for three visits in 7 days,
    # with one visit two days before the branch
    since, cond = MONDAY, at_least(3)
    events = views(-2, 3, 4)

    # Then before the third visit it is unknown, and true on it (days -2, 3, 4 are within 7 days)
    assert answer(cond, views(-2, 3), MONDAY + 3 * DAY + HOUR, since=since) is None
    assert answer(cond, events, MONDAY + 4 * DAY, since=since) is True
    # And its opposite is settled false at that moment, not at the deadline
    below = visits({"cmp": "<", "n": 3})
    assert answer(below, events, MONDAY + 4 * DAY, since=since) is False
    assert answer(below, views(-2, 3), MONDAY + 5 * DAY, since=since) is None
    assert answer(below, views(-2, 3), MONDAY + 7 * DAY, since=since) is True


def test_a_waiting_count_is_false_at_the_deadline_when_no_week_held_enough() -> None:
    # Given visits spread out: never three within 7 days of one another
    events = views(-6, 1, 6)
    assert answer(at_least(3), events, MONDAY + 7 * DAY, since=MONDAY) is False
    # And a visit after the deadline comes too late
    assert answer(at_least(3), [*views(1, 2), *views(8)], MONDAY + 9 * DAY, since=MONDAY) is False


def test_an_equal_count_is_settled_false_early_only_once_passed() -> None:
    cond, since = visits({"cmp": "==", "n": 2}), MONDAY
    assert answer(cond, views(1, 2), MONDAY + 3 * DAY, since=since) is None
    assert answer(cond, views(1, 2, 3), MONDAY + 3 * DAY, since=since) is False
    assert answer(cond, views(1, 2), MONDAY + 7 * DAY, since=since) is True


TIMES = st.lists(st.integers(-10 * 24, 12 * 24), max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    TIMES,
    st.sampled_from(OPS),
    st.integers(0, 5),
    st.sampled_from([1, 24, 72, 7 * 24]),
    st.integers(0, 12 * 24),
)
def test_a_waiting_count_agrees_with_the_hourly_peak_and_never_changes_once_known(
    hours: list[int], cmp: str, n: int, window: int, elapsed: int
) -> None:
    # Given visits on whole hours around a branch reached at MONDAY that waits `window` hours
    cond = visits({"cmp": cmp, "n": n}, window * 3600)
    events = [Event("page_viewed", MONDAY + h * HOUR) for h in hours]
    now, deadline = MONDAY + elapsed * HOUR, MONDAY + window * HOUR
    seen = [e for e in events if e.at <= now]

    # When it is asked at some moment of (or after) the wait
    found = answer(cond, seen, now, since=MONDAY)

    # Then a known answer is the one the deadline gives, with every event by then
    final = answer(cond, [e for e in events if e.at <= deadline], deadline, since=MONDAY)
    assert found is None or found == final
    assert found is not None or now < deadline
    # And the deadline's answer compares the peak of whole-hour spans, counted by brute force
    peak = max(sum(1 for h in hours if t - window <= h <= t) for t in range(0, window + 1))
    assert final == compares(peak, cmp, n)


@settings(max_examples=200, deadline=None)
@given(TIMES, st.sampled_from(OPS), st.integers(0, 5), st.integers(1, 10 * 24))
def test_outside_a_wait_a_count_is_the_events_of_the_last_window(
    hours: list[int], cmp: str, n: int, window: int
) -> None:
    events = [Event("page_viewed", MONDAY + h * HOUR) for h in hours]
    found = answer(visits({"cmp": cmp, "n": n}, window * 3600), events, MONDAY)
    counted = sum(1 for h in hours if -window <= h <= 0)
    assert found is compares(counted, cmp, n)


def compares(count: int, cmp: str, n: int) -> bool:
    return {
        "==": count == n,
        "!=": count != n,
        ">=": count >= n,
        "<=": count <= n,
        ">": count > n,
        "<": count < n,
    }[cmp]


@pytest.mark.parametrize("count", ["3", {"cmp": "~", "n": 3}, {"cmp": ">=", "n": "3"}, {}])
def test_a_malformed_count_is_false_never_an_error(count: Any) -> None:
    cond = {**at_least(3), "count": count}
    assert answer(cond, views(0, 0, 0), MONDAY + DAY) is False


# ---------------------------------------------------------------- in a campaign


def test_a_branch_waits_for_the_third_visit_and_goes_on_at_once() -> None:
    # Given a campaign that sends, then waits up to 7 days for three visits in a week
    graph = campaign(
        """
campaign "Key moment"
  enroll when lead created
  send email "welcome/default" subject "Hi"
  if event "page_viewed" count >= 3 within 7 days:
    tag "hot"
  else:
    tag "cool"
"""
    )
    clock = VirtualClock(MONDAY)

    # When the lead visits on days 1, 2 and 5
    run = simulate(graph, LEAD, clock, 30 * DAY, events=views(1, 2, 5))

    # Then it is tagged hot at the third visit, not at the deadline
    [(when, tag)] = [(t, a.tag) for t, a in run.log if type(a).__name__ == "Tag"]
    assert (when, tag) == (MONDAY + 5 * DAY, "hot")

    # And a lead who visits twice waits the whole week and is tagged cool
    run = simulate(graph, LEAD, VirtualClock(MONDAY), 30 * DAY, events=views(1, 2))
    [(when, tag)] = [(t, a.tag) for t, a in run.log if type(a).__name__ == "Tag"]
    assert (when, tag) == (MONDAY + 7 * DAY, "cool")


def test_an_exit_rule_counts_too() -> None:
    graph = campaign(
        """
campaign "Quiet"
  enroll when lead created
  exit when event "support_ticket" count >= 2 within 30 days
  send email "welcome/default" subject "Hi"
  wait 10 days
  send email "content/whitepaper" subject "More"
"""
    )
    tickets = [Event("support_ticket", MONDAY + d * DAY) for d in (2, 4)]
    run = simulate(graph, LEAD, VirtualClock(MONDAY), 30 * DAY, events=tickets)
    assert run.templates() == ["welcome/default"]
    run = simulate(graph, LEAD, VirtualClock(MONDAY), 30 * DAY, events=tickets[:1])
    assert run.templates() == ["welcome/default", "content/whitepaper"]


# ---------------------------------------------------------------- triggers

TRIGGER = {"on": "event", "name": "page_viewed", "count": {"cmp": ">=", "n": 3}, "within": 604800}


def test_a_count_trigger_fires_on_the_third_event_of_a_week_not_before() -> None:
    # Given a lead's page views on days 0, 1 and 3
    events = views(0, 1, 3)
    for i, event in enumerate(events):
        candidate = Candidate(LEAD, events[: i + 1])
        # Then only the third fires the trigger
        assert fires(TRIGGER, candidate, EventOccurred(event), event.at) is (i == 2)


def test_a_count_trigger_counts_as_of_the_event_not_as_of_the_check() -> None:
    # Given three views in a week, checked by the scheduler a month later with all events loaded
    events = views(0, 1, 3)
    late = MONDAY + 40 * DAY
    candidate = Candidate(LEAD, events)

    # Then the third still fires it (the count as it stood then), and the second still does not
    assert fires(TRIGGER, candidate, EventOccurred(events[2]), late)
    assert not fires(TRIGGER, candidate, EventOccurred(events[1]), late)


def test_visits_spread_over_more_than_a_week_do_not_fire_it() -> None:
    events = views(0, 4, 8, 12)
    candidate = Candidate(LEAD, events)
    assert not any(fires(TRIGGER, candidate, EventOccurred(e), e.at) for e in events)


def test_a_count_trigger_enrolls_once_then_follows_reentry() -> None:
    graph = campaign(
        """
campaign "Burst"
  enroll when event "page_viewed" count >= 3 within 7 days
  send email "welcome/default" subject "Hi"
"""
    )
    events = views(0, 1, 2, 3)
    past = [PastEnrollment("Burst", MONDAY + 2 * DAY)]
    assert should_enroll(graph, Candidate(LEAD, events[:3]), EventOccurred(events[2]), events[2].at)
    # And the fourth visit, the lead already in, enrolls it no second time (no `reenter`)
    candidate = Candidate(LEAD, events, past)
    assert not should_enroll(graph, candidate, EventOccurred(events[3]), events[3].at)
