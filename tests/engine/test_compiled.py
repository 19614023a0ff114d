"""The compiled forms a caller that tests many leads uses answer as the JSON readers do.

`CompiledScoring` stands in for `compute_scores` and `mql_due`, `Segments` for
the plain segment mapping given to `should_enroll`; the simulator relies on
both giving exactly the same numbers (floats included) and the same answers.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dsl
from nurture.engine import (
    Candidate,
    Event,
    LeadCreated,
    LeadView,
    Scores,
    compute_scores,
    mql_due,
    should_enroll,
)
from nurture.engine.scoring import CompiledScoring
from nurture.engine.triggers import Segments
from tests.engine.conftest import MONDAY

CAMPAIGNS = Path(__file__).resolve().parents[2] / "campaigns"
PROGRAM = dsl.build(
    {str(p): p.read_text(encoding="utf-8") for p in sorted(CAMPAIGNS.glob("*.nurture"))},
    dsl.FileTemplates(),
)
MODEL: dict[str, Any] = PROGRAM.scoring or {}
NAMES = ["opened", "clicked", "form_submitted", "page_viewed", "demo_requested", "pricing_viewed"]

EVENTS = st.lists(
    st.builds(
        Event,
        st.sampled_from(NAMES),
        st.integers(-200 * 24, 24).map(lambda h: MONDAY + timedelta(hours=h)),
    ),
    max_size=12,
)
LEADS = st.builds(
    LeadView,
    st.just("L"),
    st.fixed_dictionaries(
        {},
        optional={
            "industry": st.sampled_from(["saas", "finance", "retail", ""]),
            "employees": st.sampled_from([5, 500, 5000, "1,200", None]),
            "title": st.sampled_from(["CEO", "VP Sales", "Engineer"]),
            "budget": st.sampled_from([1000, 50000, 80000.5]),
            "timeline": st.sampled_from(["this quarter", "later"]),
            "email": st.sampled_from(["a@corp.com", "b@gmail.com", "c@qq.com"]),
        },
    ),
    st.frozensets(st.sampled_from(["region:华东", "industry:saas", "customer", "dormant"])),
    st.sampled_from(["lead", "mql", "sql", "returned"]),
)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(LEADS, EVENTS)
def test_compiled_scoring_gives_the_same_scores_and_mql(
    lead: LeadView, events: list[Event]
) -> None:
    compiled = CompiledScoring(MODEL)

    scores = compiled.scores(lead, events, MONDAY)

    assert scores == compute_scores(MODEL, lead, events, MONDAY)
    assert compiled.interest(events, MONDAY) == scores.interest
    for seen in (scores, Scores(fit=40, interest=60, fit_grade="A")):
        expected = mql_due(lead, seen, MODEL["mql"], events=events, now=MONDAY)
        assert compiled.mql_due(lead, seen, events, MONDAY) is expected


def test_compiled_scoring_without_rules_scores_zero() -> None:
    assert CompiledScoring({}).scores(LeadView("L"), [Event("opened", MONDAY)], MONDAY) == Scores()
    assert not CompiledScoring({}).mql_due(LeadView("L"), Scores(), [], MONDAY)


@PROPERTY
@given(LEADS, EVENTS)
def test_compiled_segments_enroll_as_the_plain_mapping(lead: LeadView, events: list[Event]) -> None:
    segments = Segments(PROGRAM.segments)
    scored = LeadView(
        lead.id,
        lead.fields,
        lead.tags,
        lead.stage,
        scores=compute_scores(MODEL, lead, events, MONDAY),
    )
    candidate = Candidate(scored, events)

    for graph in PROGRAM.campaigns.values():
        plain = should_enroll(graph, candidate, LeadCreated(MONDAY), MONDAY, PROGRAM.segments)
        assert should_enroll(graph, candidate, LeadCreated(MONDAY), MONDAY, segments) is plain
    assert dict(segments) == PROGRAM.segments and len(segments) == len(PROGRAM.segments)
