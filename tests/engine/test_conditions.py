"""Condition JSON against a lead: comparisons, lists, regexes, stages, grades, events."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from nurture.engine import Context, DeliveryKey, Event, LeadView, Refs, Scores, evaluate, truth
from nurture.engine.state import Delivered
from tests.engine.conftest import MONDAY

LEAD = LeadView(
    "L1",
    {
        "industry": "SaaS",
        "employees": 750,
        "revenue": "1,200,000",
        "title": "VP Marketing",
        "email": "li@Example.com",
        "region": "Shanghai",
        "is_customer": "false",
        "created_at": "2026-01-15",
        "interests": ["ai", "crm"],
        "blank": "",
    },
    tags=frozenset({"行业:saas", "engaged"}),
    stage="sql",
    scores=Scores(fit=35, interest=20, fit_grade="B", interest_grade="C"),
    score_delta=5,
)


def holds(cond: dict[str, Any], lead: LeadView = LEAD, events: list[Event] | None = None) -> bool:
    return evaluate(cond, Context(lead, events or [], MONDAY))


def field(name: str, cmp: str, value: Any) -> dict[str, Any]:
    return {"op": "compare", "subject": "field", "field": name, "cmp": cmp, "value": value}


def subject(name: str, cmp: str, value: Any) -> dict[str, Any]:
    return {"op": "compare", "subject": name, "field": None, "cmp": cmp, "value": value}


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        (field("industry", "==", "saas"), True),  # text equality ignores case
        (field("industry", "!=", "finance"), True),
        (field("employees", ">=", 500), True),
        (field("employees", "<", 500), False),
        (field("revenue", ">", 1_000_000), True),  # numbers in text are numbers
        (field("industry", "in", ["saas", "finance"]), True),
        (field("industry", "not in", ["saas", "finance"]), False),
        (field("region", "in", ["Jiangsu", "Zhejiang"]), False),
        (field("interests", "in", ["crm"]), True),  # a list field overlaps
        (field("title", "matches", r"(?i)\b(cxo|ceo|vp)\b"), True),
        (field("title", "matches", r"\bceo\b"), False),
        (field("title", "matches", "(unclosed"), False),  # a bad regex matches nothing
        (field("email_domain", "==", "example.com"), True),  # derived from the email
        (field("created_at", ">=", "2026-01-01"), True),
        (field("created_at", "<", "2026-01-01"), False),
        (field("is_customer", "==", False), True),
        (field("employees", ">", "many"), False),  # type mismatch is false
    ],
)
def test_field_comparisons(cond: dict[str, Any], expected: bool) -> None:
    assert holds(cond) is expected


@pytest.mark.parametrize("cmp", ["==", "!=", ">=", "<", "in", "not in", "matches"])
def test_a_missing_field_is_false_for_every_comparison(cmp: str) -> None:
    value: Any = ["x"] if "in" in cmp else "x"
    assert holds(field("budget", cmp, value)) is False
    assert holds(field("blank", cmp, value)) is False


def test_scores_subjects() -> None:
    assert holds(subject("score", "==", 60))  # 35 + 20 + 5
    assert holds(subject("fit", ">=", 35)) and not holds(subject("interest", ">", 20))


@pytest.mark.parametrize(
    ("cmp", "value", "expected"),
    [
        (">=", "mql", True),
        (">=", "customer", False),
        ("==", "sql", True),
        ("<", "opportunity", True),
        ("in", ["mql", "sql"], True),
        ("not in", ["mql", "sql"], False),
        (">=", "nonsense", False),
    ],
)
def test_stage_comparisons_follow_the_funnel(cmp: str, value: Any, expected: bool) -> None:
    assert holds(subject("stage", cmp, value)) is expected


def test_a_returned_lead_ranks_with_lead() -> None:
    returned = LeadView("R", stage="returned")
    assert holds(subject("stage", "<", "mql"), returned)
    assert holds(subject("stage", ">=", "lead"), returned)
    assert not holds(subject("stage", "==", "lead"), returned)


@pytest.mark.parametrize(
    ("letter", "cmp", "value", "expected"),
    [
        ("A", ">=", "B", True),
        ("B", ">=", "B", True),
        ("C", ">=", "B", False),
        ("A", ">", "A", False),
        ("D", "<", "C", True),
        ("B", "in", ["A", "B"], True),
        ("C", "in", ["A", "B"], False),
        (None, ">=", "D", False),
    ],
)
def test_grades_rank_a_best(letter: str | None, cmp: str, value: Any, expected: bool) -> None:
    lead = LeadView("G", scores=Scores(fit_grade=letter))
    assert holds(subject("fit_grade", cmp, value), lead) is expected
    assert holds(subject("grade", cmp, value), lead) is expected


def test_grade_falls_back_to_the_interest_grade() -> None:
    lead = LeadView("G", scores=Scores(interest_grade="A"))
    assert holds(subject("grade", "==", "A"), lead)
    assert not holds(subject("fit_grade", "==", "A"), lead)


def test_boolean_logic_tags_and_truthiness() -> None:
    saas = {"op": "tagged", "tag": "行业:saas"}
    customer = {"op": "tagged", "tag": "customer"}
    assert holds({"op": "and", "args": [saas, {"op": "not", "arg": customer}]})
    assert holds({"op": "or", "args": [customer, saas]})
    assert not holds({"op": "and", "args": [saas, customer]})
    assert not holds({"op": "truthy", "field": "is_customer"})  # "false" is false
    assert holds({"op": "truthy", "field": "lead.employees"})
    assert not holds({"op": "truthy", "field": "nothing"})


def test_unknown_operators_and_garbage_are_false() -> None:
    assert not holds({"op": "teleport"})
    assert not holds(None)  # type: ignore[arg-type]
    assert not holds({"op": "compare", "subject": "mood", "cmp": "==", "value": 1})


def test_event_within_counts_the_last_span_outside_a_branch() -> None:
    demo = {"op": "event", "name": "demo_requested", "within": 7 * 86400}
    recent = [Event("demo_requested", MONDAY - timedelta(days=6))]
    old = [Event("demo_requested", MONDAY - timedelta(days=8))]
    future = [Event("demo_requested", MONDAY + timedelta(days=1))]
    assert holds(demo, events=recent)
    assert not holds(demo, events=old)
    assert not holds(demo, events=future)  # not yet happened at `now`


def test_engagement_in_a_segment_matches_by_message_name() -> None:
    opened = {"op": "opened", "message": "whitepaper", "link": None, "within": None}
    assert holds(opened, events=[Event("opened", MONDAY, None, "whitepaper")])
    assert not holds(opened, events=[Event("opened", MONDAY, None, "other")])
    bounced = {"op": "bounced", "message": None, "link": None, "within": None}
    assert holds(bounced, events=[Event("bounced_hard", MONDAY)])


def test_a_waiting_branch_is_unknown_until_its_deadline() -> None:
    sent = Delivered("n1", "", MONDAY)
    refs = Refs(7, sent, {})
    opened = {"op": "opened", "message": None, "link": None, "within": 86400}
    waiting = Context(LEAD, [], MONDAY + timedelta(hours=1), refs, since=MONDAY)
    assert truth(opened, waiting) is None
    assert truth({"op": "not", "arg": opened}, waiting) is None
    later = Context(LEAD, [], MONDAY + timedelta(days=1), refs, since=MONDAY)
    assert truth(opened, later) is False
    event = Event("opened", MONDAY + timedelta(hours=2), DeliveryKey(7, "n1", ""))
    seen = Context(LEAD, [event], MONDAY + timedelta(hours=3), refs, since=MONDAY)
    assert truth(opened, seen) is True
    # three-valued and/or: a known false decides an `and`, a known true an `or`
    no = {"op": "tagged", "tag": "nope"}
    assert truth({"op": "and", "args": [opened, no]}, waiting) is False
    assert truth({"op": "or", "args": [opened, {"op": "tagged", "tag": "engaged"}]}, waiting)


def test_an_unsent_named_message_was_never_opened() -> None:
    refs = Refs(7, None, {})
    opened = {"op": "opened", "message": "whitepaper", "link": None, "within": None}
    events = [Event("opened", MONDAY, DeliveryKey(7, "n1", ""), "whitepaper")]
    assert not evaluate(opened, Context(LEAD, events, MONDAY, refs))


def test_dates_and_datetimes_compare_with_iso_text() -> None:
    lead = LeadView(
        "D", {"created_at": date(2026, 1, 15), "seen": datetime(2026, 2, 1, tzinfo=UTC)}
    )
    assert holds(field("created_at", ">", "2026-01-01"), lead)
    assert holds(field("seen", "<", "2026-03-01T00:00:00+00:00"), lead)
