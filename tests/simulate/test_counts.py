"""Counting conditions in the dry run: a waiting count, a count trigger and a counted MQL rule."""

from __future__ import annotations

import pytest

from nurture.simulate import Rates
from tests.simulate.helpers import NEVER, campaign, program, run, step

READER = """\
campaign "Reader"
  send email "a/one"
  wait 1 day
  send email "a/two"
  wait 1 day
  send email "a/three"
  if opened count >= 2 within 14 days:
    tag "reader"
  else:
    tag "skimmer"
"""


@pytest.mark.parametrize(("rate", "yes", "no"), [(1.0, 25, 0), (0.0, 0, 25)])
def test_a_waiting_count_follows_the_opens(rate: float, yes: int, no: int) -> None:
    # Given three sends, then a branch that waits for two opens of them in 14 days
    prog = program(READER)

    # When every lead opens everything (or nothing)
    report = run(prog, leads=25, days=30, rates=Rates(open=rate, click=0, reply=0, event=0))

    # Then all take yes (or all wait out the 14 days and take the timeout)
    assert step(report, "n6")["entered"] == 25
    assert (step(report, "n7")["entered"], step(report, "n8")["entered"]) == (yes, no)


HOT = """\
campaign "Hot"
  enroll when event "pricing_viewed" count >= 2 within 7 days
  send email "a/hot"

scoring "Key moments"
  interest:
    +5 per click
  mql when event "pricing_viewed" count >= 2 within 7 days
"""


@pytest.mark.parametrize(("event", "entered"), [(1.0, 20), (0.0, 0)])
def test_a_count_trigger_and_a_counted_mql_rule_fire_on_the_second_visit(
    event: float, entered: int
) -> None:
    # Given a reader campaign whose clicks lead to pricing views (the custom event the
    # trigger counts), and a campaign entered on two of them in a week
    prog = program(READER + "\n" + HOT)

    # When every lead clicks every message and each click brings a pricing view (or none does)
    rates = Rates(open=1.0, click=1.0, reply=0, event=event)
    report = run(prog, leads=20, days=30, rates=rates, entry=("Reader",))

    # Then every lead enters "Hot" (or none does), and becomes an MQL by the rule
    assert campaign(report, "Hot")["enrolled"] == entered
    assert step(report, "n1", "Hot")["sent"] == entered
    assert report["mql"]["count"] == entered
    assert report["mql"]["by_cause"] == ({"scoring rule": entered} if entered else {})


def test_leads_that_never_react_never_reach_a_count() -> None:
    report = run(program(READER + "\n" + HOT), leads=10, days=30, rates=NEVER, entry=("Reader",))
    assert campaign(report, "Hot")["enrolled"] == 0


VISITS = """\
scoring "Visits"
  interest:
    +2 per visit
  mql when event "page_viewed" count >= 2 within 7 days
"""


def test_an_event_only_a_count_names_is_among_those_simulated_leads_do() -> None:
    # Given an MQL rule that counts page views, an event no trigger or custom rule names
    prog = program(READER + "\n" + VISITS)

    # When every click brings one of the events the program counts
    rates = Rates(open=1.0, click=1.0, reply=0, event=1.0)
    report = run(prog, leads=20, days=30, rates=rates)

    # Then leads view pages, and two views in a week make every lead an MQL
    assert report["mql"]["count"] == 20
