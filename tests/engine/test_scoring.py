"""Fit, interest with decay, grades and the MQL rule, from a compiled scoring file."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dsl
from nurture.engine import Event, LeadView, Scores, compute_scores, mql_due
from nurture.engine.scoring import (
    REPEAT_WINDOW,
    CompiledScoring,
    decay_factor,
    grade_of,
    is_repeat,
    next_decay,
)
from nurture.engine.state import DeliveryKey
from tests.engine.conftest import MONDAY

SCORING = r"""
scoring "B2B default"
  fit:
    +20 when lead.industry in ["saas", "finance"]
    +15 when lead.employees >= 500
    +15 when lead.title matches "(?i)\\b(cxo|ceo|cfo|cmo|vp)\\b"
    -20 when lead.email_domain in freemail
  interest:
    +1 per open
    +5 per click
    +20 per event "webinar_attended"
    +15 per event "pricing_viewed"
    decay 50% every 30 days
  grade fit: A >= 40, B >= 25, C >= 10, else D
  mql when fit grade in [A, B] and interest >= 50
"""


def _model() -> dict[str, Any]:
    model = dsl.build({"s.nurture": SCORING}).scoring
    assert model is not None
    return model


MODEL = _model()
DAY = timedelta(days=1)


def lead(**fields: object) -> LeadView:
    return LeadView("L", fields)


def test_fit_sums_the_rules_that_hold() -> None:
    cxo = lead(industry="saas", employees=800, title="CEO", email="a@corp.com")
    assert compute_scores(MODEL, cxo, [], MONDAY).fit == 50
    freemail = lead(industry="retail", employees=10, email="x@gmail.com")
    assert compute_scores(MODEL, freemail, [], MONDAY).fit == -20


def test_interest_decays_by_whole_periods() -> None:
    # a webinar (20) and a click (5) 45 days ago are one period old: halved once
    # a pricing view (15) today is fresh; an open 61 days ago is two periods old: 1/4
    events = [
        Event("webinar_attended", MONDAY - 45 * DAY),
        Event("clicked", MONDAY - 45 * DAY),
        Event("pricing_viewed", MONDAY),
        Event("opened", MONDAY - 61 * DAY),
        Event("page_viewed", MONDAY),  # no rule: no points
        Event("clicked", MONDAY + DAY),  # in the future: not yet
    ]
    scores = compute_scores(MODEL, lead(), events, MONDAY)
    assert scores.interest == 10 + 2.5 + 15 + 0.25


def test_interest_next_changes_when_a_scoring_event_enters_its_next_period() -> None:
    # Periods of 30 days: the click 45 days ago next decays in 15 days, the pricing
    # view 10 days ago in 20; the page view (no points) and the future click do not count
    events = [
        Event("clicked", MONDAY - 45 * DAY),
        Event("pricing_viewed", MONDAY - 10 * DAY),
        Event("page_viewed", MONDAY - 1 * DAY),
        Event("clicked", MONDAY + 2 * DAY),
    ]
    assert next_decay(MODEL, events, MONDAY) == MONDAY + 15 * DAY
    # at the boundary itself the event has just entered a period: the next is a whole one on
    assert next_decay(MODEL, events[:1], MONDAY + 15 * DAY) == MONDAY + 45 * DAY
    assert next_decay(MODEL, [Event("page_viewed", MONDAY)], MONDAY) is None
    assert next_decay({**MODEL, "decay": None}, events, MONDAY) is None
    assert next_decay(None, events, MONDAY) is None


def test_decay_factor() -> None:
    decay = {"percent": 25.0, "every": 30 * 86400}
    assert decay_factor(29 * DAY, decay) == 1
    assert decay_factor(30 * DAY, decay) == 0.75
    assert decay_factor(60 * DAY, decay) == 0.75**2
    assert decay_factor(60 * DAY, None) == 1


def test_grade_thresholds() -> None:
    steps = MODEL["grades"]["fit"]
    assert [grade_of(v, steps) for v in (55, 40, 39.9, 25, 10, 9, -20)] == [
        "A", "A", "B", "B", "C", "D", "D",
    ]  # fmt: skip
    assert grade_of(5, [{"grade": "A", "at": 10}]) is None
    assert grade_of(5, None) is None


def test_no_model_scores_zero() -> None:
    assert compute_scores(None, lead(), [Event("opened", MONDAY)], MONDAY) == Scores()


def test_mql_is_due_the_first_time_the_rule_holds() -> None:
    # Given a good-fit lead with interest 60 (three webinars)
    good = lead(industry="saas", employees=800, title="VP Sales")
    events = [Event("webinar_attended", MONDAY - h * timedelta(hours=1)) for h in (1, 2, 3)]
    scores = compute_scores(MODEL, good, events, MONDAY)
    assert (scores.fit, scores.fit_grade, scores.interest) == (50, "A", 60)

    # Then the MQL rule holds for a lead, not for one already MQL, and again once returned
    rule = MODEL["mql"]
    assert mql_due(good, scores, rule, events=events, now=MONDAY)
    for stage, due in [("mql", False), ("sql", False), ("returned", True)]:
        staged = LeadView("L", good.fields, stage=stage)
        assert mql_due(staged, scores, rule, events=events, now=MONDAY) is due, stage

    # And not with low interest, nor without a rule
    low = compute_scores(MODEL, good, events[:1], MONDAY)
    assert not mql_due(good, low, rule, events=events[:1], now=MONDAY)
    assert not mql_due(good, scores, None, now=MONDAY)


def test_score_in_conditions_adds_manual_deltas() -> None:
    scored = LeadView("L", scores=Scores(fit=30, interest=25), score_delta=10)
    assert scored.score == 65


def test_repeated_opens_and_clicks_of_one_delivery_score_once_within_the_window() -> None:
    # Given a delivery clicked 20 times in a minute and opened three times in it, another
    # delivery clicked at the same time, and the first one clicked again an hour after its last
    first, second = DeliveryKey(1, "n1"), DeliveryKey(1, "n2")
    start = MONDAY - DAY
    events = [Event("clicked", start + timedelta(seconds=3 * i), first) for i in range(20)]
    events += [Event("opened", start + timedelta(seconds=i), first) for i in (1, 2, 30)]
    events += [Event("clicked", start + timedelta(seconds=30), second)]
    events += [Event("clicked", start + timedelta(seconds=58) + REPEAT_WINDOW, first)]
    events += [Event("clicked", start + 2 * REPEAT_WINDOW)]  # no delivery: cannot tell
    events += [Event("clicked", start + 2 * REPEAT_WINDOW)]
    events.sort(key=lambda e: e.at)

    # When interest is computed, by the store's function, the simulator's and incrementally
    full = compute_scores(MODEL, lead(), events, MONDAY).interest
    compiled = CompiledScoring(MODEL)
    incremental = sum(
        compiled.interest(events, MONDAY, start=i) - compiled.interest(events, MONDAY, start=i + 1)
        for i in range(len(events))
    )

    # Then each delivery's clicks count once an hour (3 clicks), its opens once, the events
    # without a delivery each (2 clicks): 5 clicks and 1 open, all alike
    assert full == compiled.interest(events, MONDAY) == incremental == 5 * 5 + 1
    # And the repeats do not bring decay forward
    assert next_decay(MODEL, events, MONDAY) == next_decay(
        MODEL, [e for i, e in enumerate(events) if not is_repeat(events, i)], MONDAY
    )
