"""The Welcome flow from DESIGN.md, run on a virtual clock for leads in two time zones."""

from __future__ import annotations

from datetime import timedelta

from nurture.engine import Deferred, Event, LeadView, Send, VirtualClock
from tests.engine.conftest import utc
from tests.engine.sim import campaign, opens_after, simulate

WELCOME_START = """
campaign "Welcome"
  kind welcome
  enroll when lead created
  exit when tagged "customer" or stage >= sql
  window weekdays 09:00-18:00 lead time
  if lead.persona == "cxo":
    send email "welcome/cxo" subject "A note for leaders at {{ lead.company }}"
  else:
    send email "welcome/marketer" subject "Welcome, {{ lead.first_name }}"
  if opened within WITHIN:
    send email "content/deep-dive"
    tag "engaged:deep"
  else:
    send wechat "welcome/intro-card"
"""


def welcome(within: str = "3 days") -> str:
    return WELCOME_START.replace("WITHIN", within)


def lead_in(zone: str, persona: str = "marketer") -> LeadView:
    return LeadView("L1", {"time_zone": zone, "persona": persona, "first_name": "Li"})


def test_an_opener_gets_the_deep_dive_on_day_two_inside_the_window(
    virtual_clock: VirtualClock,
) -> None:
    # Given a Shanghai lead created Monday 08:00 local (00:00 UTC), before the window opens,
    # who opens every message 25 hours after it arrives
    lead = lead_in("Asia/Shanghai", persona="cxo")

    # When the Welcome flow runs
    run = simulate(
        campaign(welcome()),
        lead,
        virtual_clock,
        timedelta(days=10),
        respond=opens_after(timedelta(hours=25)),
    )

    # Then the first touch waits for 09:00 Shanghai (01:00 UTC), the open on Tuesday 10:00
    # local wakes the branch at once, and the deep dive goes out then (day 2, in the window)
    assert [(t, s.template) for t, s in run.sends()] == [
        (utc(2026, 3, 2, 1), "welcome/cxo"),
        (utc(2026, 3, 3, 2), "content/deep-dive"),
    ]
    first = run.sends()[0][1]
    assert first.subject == "A note for leaders at {{ lead.company }}"
    assert run.of(Deferred)[0][1] == Deferred("n2", utc(2026, 3, 2, 1), "window")
    assert "engaged:deep" in run.lead.tags
    assert run.state is not None and run.state.state == "done"


def test_a_lead_who_never_opens_gets_the_card_deferred_past_the_weekend(
    virtual_clock: VirtualClock,
) -> None:
    # Given a Shanghai lead created Wednesday 17:30 local (09:30 UTC), who never opens
    virtual_clock.advance_to(utc(2026, 3, 4, 9, 30))
    lead = lead_in("Asia/Shanghai")

    # When the flow runs
    run = simulate(campaign(welcome()), lead, virtual_clock, timedelta(days=10))

    # Then the welcome goes at once, the 3-day timeout falls on Saturday 17:30 local,
    # and the WeChat card waits for Monday 09:00 Shanghai (01:00 UTC)
    assert [(t, s.channel, s.template) for t, s in run.sends()] == [
        (utc(2026, 3, 4, 9, 30), "email", "welcome/marketer"),
        (utc(2026, 3, 9, 1), "wechat", "welcome/intro-card"),
    ]
    assert [a for _, a in run.of(Deferred)] == [Deferred("n7", utc(2026, 3, 9, 1), "window")]


def test_a_timeout_at_night_waits_for_the_next_morning(virtual_clock: VirtualClock) -> None:
    # Given a Shanghai lead created Monday 17:00 local and a 30-hour wait for the open
    virtual_clock.advance_to(utc(2026, 3, 2, 9))
    lead = lead_in("Asia/Shanghai")

    # When nobody opens
    run = simulate(campaign(welcome("30 hours")), lead, virtual_clock, timedelta(days=5))

    # Then the timeout (Tuesday 23:00 local) defers the card to Wednesday 09:00 local
    assert [t for t, _ in run.sends()] == [utc(2026, 3, 2, 9), utc(2026, 3, 4, 1)]


def test_new_york_timeout_on_a_saturday_lands_on_monday_nine_after_the_dst_change(
    virtual_clock: VirtualClock,
) -> None:
    # Given a New York lead created Friday 6 March 2026, 16:00 EST (21:00 UTC)
    virtual_clock.advance_to(utc(2026, 3, 6, 21))
    lead = lead_in("America/New_York")

    # When the one-day wait for an open times out on Saturday
    run = simulate(campaign(welcome("1 day")), lead, virtual_clock, timedelta(days=5))

    # Then the card goes Monday 9 March 09:00 EDT, which is 13:00 UTC (clocks moved on Sunday)
    assert [t for t, _ in run.sends()] == [utc(2026, 3, 6, 21), utc(2026, 3, 9, 13)]


def test_an_open_of_an_older_message_does_not_answer_the_last_one(
    virtual_clock: VirtualClock,
) -> None:
    # Given a flow that sends two messages and then waits for an open of the last one
    graph = campaign(
        """
campaign "Two"
  enroll when lead created
  send email "a"
  wait 1 day
  send email "b"
  if opened within 2 days:
    tag "opened-b"
  else:
    tag "no-open"
"""
    )

    # When the lead opens only the first message, on day 2
    def respond(send: Send, key, at):  # type: ignore[no-untyped-def]
        return (
            [Event("opened", at + timedelta(days=1, hours=1), key)] if send.template == "a" else []
        )

    run = simulate(graph, LeadView("L"), virtual_clock, timedelta(days=5), respond=respond)

    # Then the branch times out on day 3
    assert run.lead.tags == {"no-open"}
    assert run.state is not None and run.state.ended_at == utc(2026, 3, 5)


def test_an_exit_condition_stops_the_flow_during_a_wait(virtual_clock: VirtualClock) -> None:
    # Given a lead in the Welcome flow who becomes a customer on day 2, during the wait
    became_customer = utc(2026, 3, 3, 12)

    def customer(lead: LeadView) -> LeadView:
        return LeadView(lead.id, lead.fields, lead.tags | {"customer"})

    # When the flow runs
    run = simulate(
        campaign(welcome()),
        lead_in("UTC"),
        virtual_clock,
        timedelta(days=10),
        changes=[(became_customer, customer)],
    )

    # Then only the first touch went out and the enrollment exited at that moment
    assert run.templates() == ["welcome/marketer"]
    assert run.state is not None
    assert (run.state.state, run.state.exit_reason) == ("exited", "exit condition")
    assert run.state.ended_at == became_customer
