"""The dry run on small campaigns whose numbers can be checked by hand."""

from __future__ import annotations

import json

import pytest

from nurture.simulate import Rates
from tests.simulate.helpers import ALWAYS, NEVER, campaign, program, run, step

TWO_SENDS = """\
campaign "Two"
  send email "a/one"
  wait 2 days
  send email "a/two"
"""


def test_two_sends_with_a_wait_reach_every_lead_twice() -> None:
    # Given a campaign of two sends two days apart, and leads who never react
    prog = program(TWO_SENDS)

    # When 20 leads run through it for 10 days
    report = run(prog, leads=20, days=10)

    # Then every step is entered by every lead, each send goes to each lead once,
    # and every lead has finished by day 3
    assert [(s["id"], s["kind"], s["entered"], s["sent"]) for s in report["steps"]] == [
        ("n1", "send", 20, 20),
        ("n2", "wait", 20, 0),
        ("n3", "send", 20, 20),
        ("end", "end", 20, 0),
    ]
    assert report["touches_per_lead"] == {"mean": 2.0, "max": 2, "total": 40}
    assert report["max_touches_7d"] == 2
    assert report["completed"] == 20
    assert report["exits"] == {}
    assert report["in_flight"]["leads"] == 0
    assert step(report, "n1")["description"] == "email a/one"
    assert step(report, "n1")["line"] == 2


WITHIN = """\
campaign "Opens"
  send email "a/hello"
  if opened within 3 days:
    tag "opener"
  else:
    tag "silent"
"""


@pytest.mark.parametrize(("rate", "yes", "no"), [(1.0, 30, 0), (0.0, 0, 30)])
def test_a_within_branch_follows_the_open_rate(rate: float, yes: int, no: int) -> None:
    # Given a branch that waits up to 3 days for the open
    prog = program(WITHIN)

    # When everyone opens (or nobody does); opens come within two days
    report = run(prog, leads=30, days=10, rates=Rates(open=rate, click=0, reply=0, event=0))

    # Then all leads take yes (or all take the timeout), and the branch counts each once
    assert step(report, "n2")["entered"] == 30
    assert step(report, "n3")["entered"] == yes
    assert step(report, "n4")["entered"] == no
    assert step(report, "n1")["opened"] == yes


CAPPED = """\
campaign "Capped"
  cap 2 per week
  send email "a/one"
  wait 1 day
  send email "a/two"
  wait 1 day
  send email "a/three"
  wait 1 day
  send email "a/four"
"""


def test_a_cap_defers_touches_and_the_report_shows_it() -> None:
    # Given four sends a day apart under a cap of 2 per week
    prog = program(CAPPED)

    # When 10 leads run for 30 days
    report = run(prog, leads=10, days=30)

    # Then days 0 and 1 go on schedule; the third waits for day 7, when the first leaves
    # the 7-day window; the fourth follows on day 8, when the second has left it.
    # No lead ever gets more than 2 touches in 7 days.
    assert [step(report, n)["deferred"] for n in ("n1", "n3", "n5", "n7")] == [0, 0, 10, 0]
    assert step(report, "n5")["deferred_by"] == {"cap": 10}
    assert step(report, "n5")["entered"] == 10  # a deferred send resumed is not entered twice
    assert [step(report, n)["sent"] for n in ("n1", "n3", "n5", "n7")] == [10, 10, 10, 10]
    assert report["max_touches_7d"] <= 2
    assert campaign(report, "Capped")["max_touches_7d"] == 2
    assert campaign(report, "Capped")["deferred"] == 10
    assert report["caps"] == {"Capped": ["2 per week"]}


MQL_STEP = """\
campaign "Hand off"
  send email "a/hello"
  wait 2 days
  mql
  notify sales "sales/new"
"""


def test_an_mql_step_makes_every_lead_an_mql_on_day_two() -> None:
    prog = program(MQL_STEP)

    report = run(prog, leads=12, days=10)

    assert report["mql"]["count"] == 12
    assert report["mql"]["rate"] == 1.0
    assert 2.0 <= report["mql"]["days_median"] <= report["mql"]["days_p90"] <= 3.0
    assert report["mql"]["by_cause"] == {'campaign "Hand off" step n3': 12}
    assert report["notifications"] == {"sales/new": 12}


SCORING = """\
scoring "Test"
  interest:
    +10 per open
  mql when interest >= 20
"""

THREE_MAILS = """\
campaign "Mails"
  exit when stage >= mql
  send email "a/one"
  wait 3 days
  send email "a/two"
  wait 3 days
  send email "a/three"
"""


def test_the_scoring_rule_makes_mqls_and_their_exit_rule_lets_them_go() -> None:
    # Given 10 points per open, MQL at 20, and a campaign that lets MQLs go
    prog = program(THREE_MAILS, scoring=SCORING)

    # When everyone opens everything
    report = run(prog, leads=15, days=20, rates=Rates(open=1.0, click=0, reply=0, event=0))

    # Then each lead qualifies with its second open (days 3 to 5) and leaves before the third mail
    assert report["mql"]["count"] == 15
    assert report["mql"]["by_cause"] == {"scoring rule": 15}
    assert 3.0 <= report["mql"]["days_median"] <= 5.1
    assert report["exits"] == {"exit condition": 15}
    assert step(report, "n5")["sent"] == 0


def test_a_campaign_that_never_qualifies_anyone_reports_no_mql() -> None:
    prog = program(THREE_MAILS, scoring=SCORING)

    report = run(prog, leads=15, days=20)

    assert report["mql"] == {
        "count": 0,
        "rate": 0.0,
        "days_median": None,
        "days_p90": None,
        "by_cause": {},
    }


HANDOVER = """\
campaign "First"
  send email "a/one"
  enroll "Other"

campaign "Other"
  send email "b/one"
  wait 1 day
  send email "b/two"
"""


def test_enroll_hands_every_lead_to_the_other_campaign() -> None:
    prog = program(HANDOVER)

    report = run(prog, leads=8, days=10, entry=("First",))

    assert campaign(report, "First")["entry"] is True
    assert campaign(report, "Other")["entry"] is False
    assert campaign(report, "Other")["enrolled"] == 8
    assert step(report, "n3", "Other")["sent"] == 8
    assert report["touches_per_lead"]["max"] == 3
    assert report["entry_campaigns"] == ["First"]


TAGGED = """\
campaign "Tagger"
  send email "a/one"
  if opened within 2 days:
    tag "engaged"

campaign "Follow-up"
  enroll when tagged "engaged"
  send email "b/more"
"""


def test_a_tag_fires_the_other_campaigns_trigger() -> None:
    prog = program(TAGGED)

    everyone = run(prog, leads=10, days=10, rates=ALWAYS, entry=("Tagger",))
    nobody = run(prog, leads=10, days=10, rates=NEVER, entry=("Tagger",))

    assert campaign(everyone, "Follow-up")["enrolled"] == 10
    assert campaign(nobody, "Follow-up")["enrolled"] == 0


CLICKS = """\
campaign "Download"
  send email "content/paper" as paper
  if clicked "download" paper within 5 days:
    tag "downloaded"
"""


def test_clicks_name_the_link_the_campaign_asks_for() -> None:
    prog = program(CLICKS)

    report = run(prog, leads=10, days=10, rates=ALWAYS)

    assert step(report, "n1")["clicked"] == 10
    assert step(report, "n3")["entered"] == 10


LONG_WAIT = """\
campaign "Slow"
  send email "a/one"
  wait 30 days
  send email "a/two"
"""


def test_leads_waiting_past_the_end_are_in_flight_and_not_stuck() -> None:
    prog = program(LONG_WAIT)

    report = run(prog, leads=10, days=10)

    assert report["in_flight"] == {
        "leads": 10,
        "enrollments": 10,
        "waiting": 10,
        "stuck": 0,
        "stuck_examples": [],
    }
    assert step(report, "n3")["in_flight"] == 10  # on their way to it, through the wait
    assert report["completed"] == 0


QUIET = """\
campaign "Welcome"
  send email "a/one"

campaign "Wake up"
  enroll when inactive for 5 days
  send email "b/gift"
"""


def test_inactive_leads_enter_the_reactivation_campaign_after_the_quiet_period() -> None:
    prog = program(QUIET)

    quiet = run(prog, leads=10, days=10, entry=("Welcome",))
    short = run(prog, leads=10, days=4, entry=("Welcome",))

    assert campaign(quiet, "Wake up")["enrolled"] == 10
    assert campaign(short, "Wake up")["enrolled"] == 0


SEGMENT = """\
segment "openers"
  interest >= 2

scoring "S"
  interest:
    +1 per open

campaign "Welcome"
  send email "a/one"
  wait 1 day
  send email "a/two"

campaign "Openers"
  enroll when segment "openers"
  send email "b/thanks"
"""


def test_a_segment_trigger_fires_once_the_lead_is_in_the_segment() -> None:
    prog = program(SEGMENT)

    report = run(prog, leads=10, days=10, rates=Rates(open=1.0, click=0, reply=0, event=0))

    assert campaign(report, "Openers")["enrolled"] == 10


def test_unsubscribed_leads_leave_every_campaign() -> None:
    prog = program(LONG_WAIT)
    rates = Rates(open=0.0, click=0.0, reply=0.0, event=0.0, unsubscribe=1.0)

    report = run(prog, leads=10, days=10, rates=rates)

    assert report["exits"] == {"suppressed": 10}
    assert report["events"] == {"unsubscribed": 10}
    assert report["in_flight"]["leads"] == 0


def test_the_same_seed_gives_the_same_report_and_another_seed_another() -> None:
    prog = program(THREE_MAILS, scoring=SCORING)
    rates = Rates(open=0.5, click=0.3, reply=0.1, event=0.1)

    first = json.dumps(run(prog, leads=50, days=20, seed=7, rates=rates), sort_keys=True)
    again = json.dumps(run(prog, leads=50, days=20, seed=7, rates=rates), sort_keys=True)
    other = json.dumps(run(prog, leads=50, days=20, seed=8, rates=rates), sort_keys=True)

    assert first == again
    assert json.loads(first)["steps"] != json.loads(other)["steps"]


def test_bad_settings_are_refused_before_anything_runs() -> None:
    prog = program(TWO_SENDS)

    with pytest.raises(ValueError, match="--leads must be at least 1"):
        run(prog, leads=0)
    with pytest.raises(ValueError, match="--open-rate must be between 0 and 1"):
        run(prog, rates=Rates(open=1.5))
    with pytest.raises(ValueError, match="no campaign named 'Nope'"):
        run(prog, entry=("Nope",))


INTERLEAVED = """\
campaign "Three"
  send email "t/one"
  wait 1 day
  send email "t/two"
  wait 1 day
  send email "t/three"

campaign "Two"
  wait 12 hours
  send email "w/one"
  wait 1 day
  send email "w/two"

campaign "Late"
  wait 12 days
  send email "l/one"
"""


def test_the_most_touches_in_7_days_are_counted_per_campaign_and_for_the_run() -> None:
    # Given two campaigns whose sends interleave over the first three days, and a third
    # that sends once, alone, twelve days later
    prog = program(INTERLEAVED)

    # When leads run through all three for 20 days
    report = run(prog, leads=30, days=20)

    # Then a lead's busiest 7 days hold 5 touches, 3 of them from the first campaign and
    # 2 from the second; the late one's single send counts 1, though the lead's busiest
    # week was busier
    assert report["max_touches_7d"] == 5
    assert campaign(report, "Three")["max_touches_7d"] == 3
    assert campaign(report, "Two")["max_touches_7d"] == 2
    assert campaign(report, "Late")["max_touches_7d"] == 1
