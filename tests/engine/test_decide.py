"""The step function, one semantic at a time: waits, branches, loops, splits, exits, limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from dsl.graph import Edge, Node, StepGraph
from nurture.engine import (
    MAX_STEPS,
    DeliveryKey,
    EmitMql,
    EnrollInto,
    EnrollmentState,
    Event,
    Exit,
    LeadView,
    NotifySales,
    Score,
    Scores,
    Send,
    Suppressed,
    Tag,
    Untag,
    VirtualClock,
    decide,
)
from tests.engine.conftest import MONDAY, utc
from tests.engine.sim import campaign, simulate

DAY = timedelta(days=1)


def start(graph: StepGraph, now: datetime = MONDAY) -> EnrollmentState:
    return EnrollmentState.start(7, graph, now)


DRIP = """
campaign "Product drip"
  kind drip
  enroll when tagged "interest:product"
  exit when stage >= mql
  repeat 6 times:
    send email "drip/tip-{{ loop.index }}" subject "Tip {{ loop.index }} of {{ loop.length }}"
    wait 2 weeks
"""


def test_a_drip_renders_six_tips_two_weeks_apart_with_distinct_keys(
    virtual_clock: VirtualClock,
) -> None:
    # Given the product drip
    # When a lead runs through it
    run = simulate(campaign(DRIP), LeadView("L"), virtual_clock, timedelta(weeks=20))

    # Then tips 1..6 go out every two weeks, each under its own delivery key
    sends = run.sends()
    assert [s.template for _, s in sends] == [f"drip/tip-{i}" for i in range(1, 7)]
    assert [t for t, _ in sends] == [MONDAY + timedelta(weeks=2 * i) for i in range(6)]
    assert [s.iteration for _, s in sends] == [f"n1:{i}" for i in range(1, 7)]
    assert [s.iteration_no for _, s in sends] == list(range(6))
    assert sends[2][1].subject == "Tip 3 of 6"
    assert run.state is not None and run.state.state == "done" and run.state.loops == {}


def test_a_drip_stops_when_the_lead_becomes_mql(virtual_clock: VirtualClock) -> None:
    # Given a drip lead who becomes an MQL in week 5
    def mql(lead: LeadView) -> LeadView:
        return replace(lead, stage="mql")

    # When the drip runs
    run = simulate(
        campaign(DRIP),
        LeadView("L"),
        virtual_clock,
        timedelta(weeks=20),
        changes=[(MONDAY + timedelta(weeks=5), mql)],
    )

    # Then tips 1..3 went out (weeks 0, 2, 4) and the lead left at week 5
    assert run.templates() == ["drip/tip-1", "drip/tip-2", "drip/tip-3"]
    assert run.state is not None and run.state.exit_reason == "exit condition"


NESTED = """
campaign "Nested"
  enroll when lead created
  repeat 2 times:
    send email "outer-{{ loop.index }}"
    repeat 3 times:
      send email "inner-{{ loop.index }}"
      wait 1 day
    wait 1 day
"""


def test_a_nested_repeat_restarts_its_counter_in_each_outer_round(
    virtual_clock: VirtualClock,
) -> None:
    run = simulate(campaign(NESTED), LeadView("L"), virtual_clock, timedelta(days=30))
    sends = [s for _, s in run.sends()]
    assert [s.template for s in sends] == [
        "outer-1", "inner-1", "inner-2", "inner-3",
        "outer-2", "inner-1", "inner-2", "inner-3",
    ]  # fmt: skip
    inner = [(s.iteration, s.iteration_no) for s in sends if s.template.startswith("inner")]
    assert inner == [
        ("n1:1/n3:1", 0), ("n1:1/n3:2", 1), ("n1:1/n3:3", 2),
        ("n1:2/n3:1", 3), ("n1:2/n3:2", 4), ("n1:2/n3:3", 5),
    ]  # fmt: skip
    keys = [(s.node_id, s.iteration) for s in sends]
    assert len(set(keys)) == len(keys)
    # outer-2 starts after 3 inner days and the outer wait: day 4
    assert run.sends()[4][0] == MONDAY + 4 * DAY


def test_wait_until_tuesday_ten_is_the_next_tuesday_in_the_leads_zone() -> None:
    graph = campaign(
        """
campaign "Tue"
  enroll when lead created
  wait until tuesday 10:00
  send email "x"
"""
    )
    cases = {
        # Monday 00:00 UTC is Sunday 19:00 in New York: Tuesday 10:00 EST is 15:00 UTC
        ("America/New_York", MONDAY): utc(2026, 3, 3, 15),
        # ... and Monday 08:00 in Shanghai: Tuesday 10:00 CST is 02:00 UTC
        ("Asia/Shanghai", MONDAY): utc(2026, 3, 3, 2),
        # exactly Tuesday 10:00 in Shanghai: strictly after, so a week later
        ("Asia/Shanghai", utc(2026, 3, 3, 2)): utc(2026, 3, 10, 2),
        # Friday in New York, across the DST change: Tuesday 10:00 EDT is 14:00 UTC
        ("America/New_York", utc(2026, 3, 6, 12)): utc(2026, 3, 10, 14),
    }
    for (zone, now), expected in cases.items():
        lead = LeadView("L", {"time_zone": zone})
        decision = decide(start(graph, now), lead, [], graph, now)
        assert decision.actions == ()
        assert decision.state.next_run_at == expected, zone


def test_wait_until_a_past_date_goes_straight_on() -> None:
    graph = campaign(
        """
campaign "Date"
  enroll when lead created
  wait until 2026-01-05 09:00
  send email "x"
"""
    )
    decision = decide(start(graph), LeadView("L"), [], graph, MONDAY)
    assert [a.template for a in decision.sends] == ["x"]


WITHIN = """
campaign "W"
  enroll when lead created
  send email "offer" as offer
  wait 1 hour
  if COND:
    tag "yes"
  else:
    tag "no"
"""


def branch_outcome(cond: str, events: list[Event], *, after: timedelta = 5 * DAY) -> list[str]:
    """Run WITHIN with `cond` and a fixed event stream; return the tags and when."""
    graph = campaign(WITHIN.replace("COND", cond))
    clock = VirtualClock(MONDAY)
    run = simulate(graph, LeadView("L"), clock, after, events=events, enrollment_id=7)
    return [f"{a.tag}@{(t - MONDAY) / timedelta(hours=1):g}h" for t, a in run.of(Tag)]


def offer(name: str, hours: float, link: str | None = None) -> Event:
    return Event(name, MONDAY + timedelta(hours=hours), DeliveryKey(7, "n1", ""), "offer", link)


def test_within_takes_yes_at_once_when_the_event_already_happened() -> None:
    # the open at 0.5 h came before the branch was reached (1 h)
    assert branch_outcome("opened within 2 days", [offer("opened", 0.5)]) == ["yes@1h"]


def test_within_wakes_on_the_event_and_times_out_otherwise() -> None:
    assert branch_outcome("opened within 2 days", [offer("opened", 30)]) == ["yes@30h"]
    assert branch_outcome("opened within 2 days", []) == ["no@49h"]
    # an open after the deadline is too late
    assert branch_outcome("opened within 2 days", [offer("opened", 50)]) == ["no@49h"]


def test_clicked_a_named_link_of_a_named_message() -> None:
    cond = 'clicked "download" offer within 1 day'
    click = offer("clicked", 3, link="https://example.com/download?utm=x")
    assert branch_outcome(cond, [click]) == ["yes@3h"]
    assert branch_outcome(cond, [offer("clicked", 3, link="https://example.com/pricing")]) == [
        "no@25h"
    ]


def test_a_negated_within_is_decided_at_the_deadline() -> None:
    assert branch_outcome("not opened within 2 days", []) == ["yes@49h"]
    assert branch_outcome("not opened within 2 days", [offer("opened", 5)]) == ["no@49h"]


def test_event_within_counts_a_recent_event_and_waits_for_a_new_one() -> None:
    cond = 'event "demo_requested" within 2 days'
    recent = Event("demo_requested", MONDAY - timedelta(hours=20))
    old = Event("demo_requested", MONDAY - timedelta(days=3))
    later = Event("demo_requested", MONDAY + timedelta(hours=40))
    assert branch_outcome(cond, [recent]) == ["yes@1h"]
    assert branch_outcome(cond, [old]) == ["no@49h"]
    assert branch_outcome(cond, [old, later]) == ["yes@40h"]


def test_engagement_without_within_looks_at_the_message_so_far() -> None:
    assert branch_outcome("opened", [offer("opened", 0.5)]) == ["yes@1h"]
    assert branch_outcome("opened", [offer("opened", 2)]) == ["no@1h"]


def test_a_branch_woken_early_by_an_unrelated_event_keeps_waiting() -> None:
    graph = campaign(WITHIN.replace("COND", "opened within 2 days"))
    first = decide(start(graph), LeadView("L"), [], graph, MONDAY)
    parked = decide(first.state, LeadView("L"), [], graph, MONDAY + timedelta(hours=1)).state
    assert parked.waiting_for is not None and parked.cursor == "n3"
    noise = [Event("page_viewed", MONDAY + 2 * timedelta(hours=1))]
    woken = decide(parked, LeadView("L"), noise, graph, MONDAY + 3 * timedelta(hours=1))
    assert woken.actions == () and woken.state == parked


def test_a_step_that_is_not_due_does_nothing() -> None:
    graph = campaign(DRIP)
    first = decide(start(graph), LeadView("L"), [], graph, MONDAY)
    again = decide(first.state, LeadView("L"), [], graph, MONDAY + DAY)
    assert again.actions == () and again.state == first.state


def test_a_suppressed_lead_never_gets_a_send() -> None:
    graph = campaign(DRIP)
    lead = LeadView("L", suppressed="unsubscribed")
    decision = decide(start(graph), lead, [], graph, MONDAY)
    assert decision.actions == (Exit("suppressed"),)
    assert decision.state.state == "exited" and decision.state.next_run_at is None


def test_a_touch_withheld_by_suppression_is_recorded_as_suppressed() -> None:
    # Given a drip tip deferred by its window, and a lead who unsubscribes meanwhile
    graph = campaign(DRIP.replace("  repeat", "  window weekdays 09:00-18:00\n  repeat"))
    deferred = decide(start(graph), LeadView("L"), [], graph, MONDAY).state
    assert deferred.cursor == "n2" and deferred.next_run_at == MONDAY + timedelta(hours=9)

    # When it comes due
    lead = LeadView("L", suppressed="complained")
    decision = decide(deferred, lead, [], graph, MONDAY + timedelta(hours=9))

    # Then the tip is recorded as suppressed, never sent, and the lead leaves
    assert decision.actions == (
        Suppressed("n2", "email", "drip/tip-1", "n1:1", "complained"),
        Exit("suppressed"),
    )


def test_a_lead_suppressed_mid_flow_leaves_before_the_next_send(
    virtual_clock: VirtualClock,
) -> None:
    def unsubscribe(lead: LeadView) -> LeadView:
        return replace(lead, suppressed="unsubscribed")

    run = simulate(
        campaign(DRIP),
        LeadView("L"),
        virtual_clock,
        timedelta(weeks=20),
        changes=[(MONDAY + timedelta(weeks=3), unsubscribe)],
    )
    assert run.templates() == ["drip/tip-1", "drip/tip-2"]
    assert run.state is not None and run.state.exit_reason == "suppressed"


def test_exit_when_is_checked_before_every_step_within_one_decision() -> None:
    graph = campaign(
        """
campaign "Self exit"
  enroll when lead created
  exit when tagged "customer"
  send email "a"
  tag "customer"
  send email "b"
"""
    )
    decision = decide(start(graph), LeadView("L"), [], graph, MONDAY)
    assert [type(a).__name__ for a in decision.actions] == ["Send", "Tag", "Exit"]
    assert decision.state.cursor == "n3" and decision.state.exit_reason == "exit condition"


def test_simple_steps_emit_their_actions_in_order() -> None:
    graph = campaign(
        """
campaign "Steps"
  enroll when lead created
  tag "a"
  untag "b"
  score +15
  enroll "Other"
  notify sales "hot-lead"
  if score >= 20:
    mql
  mql
campaign "Other"
  enroll when tagged "x"
  send email "x"
""",
        "Steps",
    )
    lead = LeadView("L", tags=frozenset({"b"}), scores=Scores(fit=5))
    decision = decide(start(graph), lead, [], graph, MONDAY)
    assert decision.actions == (
        Tag("a"),
        Untag("b"),
        Score(15),
        EnrollInto("Other"),
        NotifySales("hot-lead", "n5"),
        EmitMql('campaign "Steps" step n7'),
    )
    assert decision.state.state == "done"


def test_mql_is_not_emitted_for_a_lead_already_at_mql_or_beyond() -> None:
    graph = campaign('campaign "M"\n  enroll when lead created\n  mql\n')
    for stage, emitted in [("lead", True), ("returned", True), ("mql", False), ("sql", False)]:
        decision = decide(start(graph), LeadView("L", stage=stage), [], graph, MONDAY)
        assert any(isinstance(a, EmitMql) for a in decision.actions) is emitted, stage


def test_exit_step_and_end() -> None:
    graph = campaign(
        """
campaign "E"
  enroll when lead created
  if lead.is_customer:
    exit
  send email "x"
"""
    )
    vip = decide(start(graph), LeadView("L", {"is_customer": "yes"}), [], graph, MONDAY)
    assert vip.actions == (Exit("exit step"),) and vip.state.state == "exited"
    other = decide(start(graph), LeadView("L"), [], graph, MONDAY)
    assert [a.template for a in other.sends] == ["x"]
    assert other.state.state == "done" and other.state.exit_reason is None
    assert other.state.ended_at == MONDAY


def test_a_cycle_without_a_wait_stops_at_the_step_limit() -> None:
    nodes = {
        "n1": Node("n1", "tag", {"tag": "a"}, (Edge("next", "n2"),), 1),
        "n2": Node("n2", "untag", {"tag": "a"}, (Edge("next", "n1"),), 2),
    }
    graph = StepGraph("Cycle", "nurture", "n1", nodes)
    decision = decide(start(graph), LeadView("L"), [], graph, MONDAY)
    assert decision.actions[-1] == Exit("step limit")
    assert len(decision.actions) == MAX_STEPS + 1
    assert decision.state.state == "exited"


def test_an_unknown_cursor_exits_instead_of_raising() -> None:
    graph = campaign(DRIP)
    state = replace(start(graph), cursor="n99")
    decision = decide(state, LeadView("L"), [], graph, MONDAY)
    assert decision.actions == (Exit("missing step n99"),)


def test_end_after_ends_the_enrollment_on_time(virtual_clock: VirtualClock) -> None:
    graph = campaign(
        """
campaign "Short"
  enroll when lead created
  end after 10 days
  send email "a"
  wait 1 week
  send email "b"
  wait 1 week
  send email "c"
"""
    )
    run = simulate(graph, LeadView("L"), virtual_clock, timedelta(days=30))
    assert run.templates() == ["a", "b"]
    assert run.state is not None
    assert (run.state.exit_reason, run.state.ended_at) == ("lifetime", MONDAY + 10 * DAY)


def test_a_done_enrollment_stays_done() -> None:
    graph = campaign(DRIP)
    done = replace(start(graph), state="done", next_run_at=None)
    assert decide(done, LeadView("L"), [], graph, MONDAY).actions == ()


def test_state_round_trips_through_json(virtual_clock: VirtualClock) -> None:
    graph = campaign(WITHIN.replace("COND", "opened within 2 days"))
    state = start(graph)
    for hours in (0, 1):
        state = decide(state, LeadView("L"), [], graph, MONDAY + timedelta(hours=hours)).state
    assert state.waiting_for is not None and state.sent
    assert EnrollmentState.from_json(state.to_json()) == state


def test_a_retried_decision_sends_nothing_new() -> None:
    # a deferred send resumes once; running the stored state again does not send twice
    graph = campaign(
        """
campaign "Window"
  enroll when lead created
  window weekdays 09:00-18:00
  send email "x"
  wait 1 day
"""
    )
    first = decide(start(graph), LeadView("L"), [], graph, MONDAY)
    assert first.sends == () and first.state.next_run_at == MONDAY + timedelta(hours=9)
    due = first.state.next_run_at
    second = decide(first.state, LeadView("L"), [], graph, due)
    assert [s.template for s in second.sends] == ["x"]
    third = decide(second.state, LeadView("L"), [], graph, due)
    assert third.sends == ()


def test_send_carries_the_template_subject_and_name() -> None:
    graph = campaign(
        'campaign "S"\n  enroll when lead created\n'
        '  send sms "reactivate/offer" subject "Hi {{ lead.first_name }}" as promo\n'
    )
    (send,) = decide(start(graph), LeadView("L"), [], graph, MONDAY).sends
    assert send == Send(
        "n1", "sms", "reactivate/offer", "Hi {{ lead.first_name }}", "promo", "", 0, None
    )


def test_within_in_a_repeat_counts_only_that_rounds_delivery(
    virtual_clock: VirtualClock,
) -> None:
    # Given a three-round loop that waits a day for an open of each round's tip
    graph = campaign(
        """
campaign "Rounds"
  enroll when lead created
  repeat 3 times:
    send email "tip-{{ loop.index }}"
    if opened within 1 day:
      tag "opened"
    else:
      untag "opened"
    wait 1 day
"""
    )

    # When the lead opens only the second tip, and the store keys events by the integer
    # iteration (as the deliveries table does)
    def respond(send: Send, key: DeliveryKey, at: datetime) -> list[Event]:
        if send.template != "tip-2":
            return []
        return [Event("opened", at + timedelta(hours=2), replace(key, iteration=send.iteration_no))]

    run = simulate(graph, LeadView("L"), virtual_clock, 10 * DAY, respond=respond)

    # Then round 1 times out at 24 h; round 2 (sent at 48 h) takes yes at 50 h; round 3 (sent at
    # 74 h) ignores round 2's open and times out at 98 h
    steps = [(type(a).__name__, (t - MONDAY) / timedelta(hours=1)) for t, a in run.log]
    assert [s for s in steps if s[0] != "Send"] == [("Untag", 24), ("Tag", 50), ("Untag", 98)]


MIXED = """
campaign "Mixed"
  enroll when lead created
  send sms "t/sms-1"
  wait 1 day
  send email "t/email"
  send sms "t/sms-2"
  wait 1 day
  tag "reached"
"""


def test_a_touch_on_a_closed_channel_is_withheld_and_the_flow_goes_on() -> None:
    # Given a lead whose SMS alone is closed (a STOP reply)
    graph = campaign(MIXED)
    lead = LeadView("L", closed={"sms": "SMS reply 'TD'"})

    # When the campaign runs through it
    first = decide(start(graph), lead, [], graph, MONDAY)
    second = decide(first.state, lead, [], graph, MONDAY + DAY)
    third = decide(second.state, lead, [], graph, MONDAY + 2 * DAY)

    # Then each SMS is withheld with the reason, the email goes out, and the flow ends normally
    why = "sms is closed for this lead: SMS reply 'TD'"
    assert first.actions == (Suppressed("n1", "sms", "t/sms-1", "", why, True),)
    assert first.state.state == "waiting"
    [email, sms] = second.actions
    assert isinstance(email, Send) and email.channel == "email"
    assert sms == Suppressed("n4", "sms", "t/sms-2", "", why, True)
    assert third.actions == (Tag("reached"),)
    assert third.state.state == "done" and third.state.exit_reason is None


def test_a_closed_channel_holds_nothing_for_a_window() -> None:
    # A touch that will not go out does not wait for the send window
    graph = campaign(MIXED.replace("  send sms", "  window weekdays 09:00-18:00\n  send sms", 1))
    lead = LeadView("L", closed={"sms": "bounced"})
    decision = decide(start(graph), lead, [], graph, MONDAY)
    assert [type(a).__name__ for a in decision.actions] == ["Suppressed"]
    assert decision.state.next_run_at == MONDAY + DAY


def test_a_global_suppression_still_exits_whatever_channel_is_closed() -> None:
    graph = campaign(MIXED)
    lead = LeadView("L", suppressed="complained", closed={"sms": "bounced"})
    decision = decide(start(graph), lead, [], graph, MONDAY)
    assert decision.actions == (
        Suppressed("n1", "sms", "t/sms-1", "", "complained"),
        Exit("suppressed"),
    )
