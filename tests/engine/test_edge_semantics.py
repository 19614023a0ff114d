"""Audit of the decision core against DESIGN.md and docs/language.md: message references,
`loop.index`, caps, windows and reentry, each with a hand-checked expectation."""

from __future__ import annotations

from datetime import datetime, timedelta

import dsl
from dsl.graph import StepGraph
from nurture.engine import (
    Candidate,
    Cap,
    Deferred,
    DeliveryKey,
    EnrollmentState,
    Event,
    LeadCreated,
    LeadView,
    NotifySales,
    PastEnrollment,
    Send,
    Tag,
    VirtualClock,
    decide,
    should_enroll,
)
from tests.engine.conftest import MONDAY, utc
from tests.engine.sim import campaign, simulate

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def start(text: str, now: datetime = MONDAY) -> tuple[EnrollmentState, StepGraph]:
    graph = campaign(text)
    return EnrollmentState.start(1, graph, now), graph


PERSONA_WELCOME = """
campaign "Persona welcome"
  enroll when lead created
  if lead.persona == "cxo":
    send email "welcome/cxo" as welcome
  else:
    send email "welcome/marketer" as welcome
  wait 1 hour
  if opened welcome within 1 day:
    tag "opened"
  else:
    tag "silent"
"""


def test_a_name_shared_by_two_exclusive_arms_refers_to_the_arm_that_was_sent() -> None:
    # Given two persona arms that both send `as welcome` (the checker allows one name on
    # exclusive branches: "on different branches they are one message")
    graph = campaign(PERSONA_WELCOME)
    sends = {n.params["template"]: n.id for n in graph.nodes.values() if n.kind == "send"}

    for persona, template in [("cxo", "welcome/cxo"), ("marketer", "welcome/marketer")]:
        # When each lead opens its own welcome two hours after it went out
        def respond(send: Send, key: DeliveryKey, at: datetime) -> list[Event]:
            return [Event("opened", at + 2 * HOUR, key, send.name)]

        run = simulate(
            graph,
            LeadView("L", {"persona": persona}),
            VirtualClock(MONDAY),
            3 * DAY,
            respond=respond,
        )

        # Then `opened welcome` sees that open, whichever arm sent it
        assert [s.node_id for _, s in run.sends()] == [sends[template]]
        assert run.of(Tag) == [(MONDAY + 2 * HOUR, Tag("opened"))], persona


def test_an_exit_rule_on_a_shared_name_sees_either_arm() -> None:
    # Given the persona arms and an exit on `opened welcome`
    text = PERSONA_WELCOME.replace(
        "  enroll when lead created\n",
        "  enroll when lead created\n  exit when opened welcome\n",
    )
    state, graph = start(text)
    first = decide(state, LeadView("L", {"persona": "cxo"}), [], graph, MONDAY)
    (send,) = first.sends

    # When the cxo opens the welcome during the hour's wait
    opened = [Event("opened", MONDAY + 0.5 * HOUR, DeliveryKey(1, send.node_id, ""))]
    woken = decide(first.state, LeadView("L", {"persona": "cxo"}), opened, graph, MONDAY + HOUR)

    # Then the lead leaves
    assert woken.state.exit_reason == "exit condition"


def test_opened_without_within_in_a_repeat_asks_about_this_rounds_message(
    virtual_clock: VirtualClock,
) -> None:
    # Given three tips a day apart, each followed by a check of "the last message"
    graph = campaign(
        """
campaign "Tips"
  enroll when lead created
  repeat 3 times:
    send email "tip-{{ loop.index }}" as tip
    wait 1 day
    if opened:
      tag "read"
    else:
      tag "unread"
    if clicked tip:
      tag "clicked"
"""
    )

    # When the lead opens and clicks only tip 1, an hour after it arrives
    def respond(send: Send, key: DeliveryKey, at: datetime) -> list[Event]:
        if send.template != "tip-1":
            return []
        return [Event(kind, at + HOUR, key, send.name) for kind in ("opened", "clicked")]

    run = simulate(graph, LeadView("L"), virtual_clock, 10 * DAY, respond=respond)

    # Then rounds 2 and 3 ask about tip 2 and tip 3, which were not opened nor clicked
    assert [(t, a.tag) for t, a in run.of(Tag)] == [
        (MONDAY + DAY, "read"),
        (MONDAY + DAY, "clicked"),
        (MONDAY + 2 * DAY, "unread"),
        (MONDAY + 3 * DAY, "unread"),
    ]


def test_a_notify_in_a_repeat_names_the_rounds_template() -> None:
    # Given a weekly note to sales whose template is numbered by the round, as sends are
    state, graph = start(
        """
campaign "Weekly"
  enroll when lead created
  repeat 2 times:
    send email "tip-{{ loop.index }}"
    notify sales "sales/week-{{ loop.index }}"
    wait 1 week
"""
    )
    first = decide(state, LeadView("L"), [], graph, MONDAY)
    second = decide(first.state, LeadView("L"), [], graph, MONDAY + 7 * DAY)

    # Then each round's note names its own template, keyed by its own round
    notes = [a for d in (first, second) for a in d.actions if isinstance(a, NotifySales)]
    assert [(n.template, n.iteration_no) for n in notes] == [
        ("sales/week-1", 0),
        ("sales/week-2", 1),
    ]


def test_a_global_cap_counts_a_send_made_earlier_in_the_same_decision() -> None:
    # Given two touches back to back and a global cap of one a day (no campaign cap)
    state, graph = start('campaign "Two"\n  send email "a"\n  send sms "b"\n')

    decision = decide(state, LeadView("L"), [], graph, MONDAY, (), Cap(1, DAY))

    # Then the second waits a day for the first to leave the cap's period
    assert [type(a).__name__ for a in decision.actions] == ["Send", "Deferred"]
    assert decision.actions[1] == Deferred("n2", MONDAY + DAY, "global cap")


def test_a_weekend_window_defers_across_the_dst_change_to_sunday_ten_local() -> None:
    # Given a weekend window in the lead's time, and a New York lead whose touch falls due
    # Saturday 7 March 17:00 EST (22:00 UTC), after the window closed
    text = (
        'campaign "Weekend"\n  enroll when lead created\n'
        "  window weekends 10:00-16:00 lead time\n"
        '  send email "x"\n'
    )
    due = utc(2026, 3, 7, 22)
    state, graph = start(text, due)
    lead = LeadView("L", {"time_zone": "America/New_York"})

    decision = decide(state, lead, [], graph, due)

    # Then it waits for Sunday 10:00, which is EDT after the 02:00 change: 14:00 UTC
    assert decision.actions == (Deferred("n1", utc(2026, 3, 8, 14), "window"),)
    sent = decide(decision.state, lead, [], graph, utc(2026, 3, 8, 14))
    assert [s.template for s in sent.sends] == ["x"]


def test_reenter_never_written_out_never_lets_a_lead_back() -> None:
    program = dsl.build(
        {
            "t.nurture": 'campaign "Once"\n  enroll when lead created\n  reenter never\n'
            '  send email "x"\n'
        }
    )
    graph = program.campaigns["Once"]
    past = [PastEnrollment("Once", MONDAY - 900 * DAY, MONDAY - 800 * DAY)]
    assert should_enroll(graph, Candidate(LeadView("L")), LeadCreated(MONDAY), MONDAY)
    again = Candidate(LeadView("L"), past=past)
    assert not should_enroll(graph, again, LeadCreated(MONDAY), MONDAY)
