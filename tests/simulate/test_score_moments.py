"""Scores are brought to a decision's moment only where the decision may test them."""

from __future__ import annotations

from nurture.simulate import Rates
from nurture.simulate.model import Campaign
from tests.simulate.helpers import program, run

FLOW = """\
campaign "C"
  send email "a"
  if opened within 2 days:
    tag "opened"
  wait 3 days
  send email "b"
  if score >= 10:
    mql
  else:
    send email "c"
"""
SCORING = 'scoring "S"\n  interest:\n    +5 per open\n    +5 per click\n'


def test_only_steps_that_reach_a_score_test_before_a_wait_need_fresh_scores() -> None:
    graph = program(FLOW).campaigns["C"]
    campaign = Campaign(graph, True)

    ids = {n.kind + (str(n.params.get("template") or "")): n.id for n in graph.nodes.values()}
    assert ids["sendb"] in campaign.score_cursors  # send b, then the score test
    assert ids["wait"] in campaign.score_cursors  # a decision resumed there walks on to it
    assert ids["senda"] not in campaign.score_cursors  # the 3-day wait parks it first
    exits = program(FLOW.replace('campaign "C"\n', 'campaign "C"\n  exit when score >= 50\n'))
    assert Campaign(exits.campaigns["C"], True).score_cursors == frozenset(graph.nodes)


def test_the_report_is_the_one_fresh_scores_everywhere_give() -> None:
    # Given the flow, and the same flow with an exit rule on scores that never holds
    # (which makes every decision bring the scores to its moment first)
    rates = Rates(open=0.7, click=0.5, event=0.0)
    lean = run(program(FLOW, scoring=SCORING), leads=200, days=20, rates=rates)
    never = FLOW.replace('campaign "C"\n', 'campaign "C"\n  exit when score >= 100000\n')
    everywhere = run(program(never, scoring=SCORING), leads=200, days=20, rates=rates)

    # Then every number is the same (the steps' lines are one apart)
    assert lean["mql"]["count"] > 0 and lean["mql"] == everywhere["mql"]
    assert [{**s, "line": 0} for s in lean["steps"]] == [
        {**s, "line": 0} for s in everywhere["steps"]
    ]
