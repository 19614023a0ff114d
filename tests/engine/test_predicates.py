"""Compiled conditions answer exactly as the interpreter, and say truly what they read.

`predicates.compile_condition` is what `decide` runs for branches and exit
rules; `conditions.truth` stays the reference. Random condition JSON (odd
shapes included) over random leads, events, messages and waits must get the
same three-valued answer from both.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nurture.engine import Context, DeliveryKey, Event, LeadView, Refs, Scores, truth
from nurture.engine.predicates import SCORE, SENT, STAGE, TAGS, compile_condition
from nurture.engine.state import Delivered

NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)

TEXT = st.sampled_from(["SaaS", "saas", "Finance", "", " yes ", "no", "1,200", "VP Sales", "x"])
VALUE = st.one_of(
    TEXT,
    st.sampled_from([0, 1, 500, 1200.5, True, False, None]),
    st.sampled_from(["2026-01-15", date(2026, 1, 15), datetime(2026, 2, 1, tzinfo=UTC)]),
    st.lists(TEXT, max_size=3),
)
FIELD_NAMES = ["industry", "employees", "title", "vip", "created_at", "interests", "stage"]
FIELD = st.sampled_from(
    [*FIELD_NAMES, "lead.industry", "lead.stage", "email_domain", "lead.lead.x", "missing", ""]
)
STAGES = st.sampled_from(["lead", "MQL", "sql", "returned", "customer", "weird"])
GRADES = st.sampled_from([None, "A", "b", "C", "F", "Z"])
TAGS_ = st.sampled_from(["a", "b", "customer"])
MESSAGES = st.sampled_from([None, "first", "story"])
WITHIN = st.sampled_from([None, 0, 3600, 86400, 7 * 86400])
COUNTS = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"cmp": st.sampled_from(["==", "!=", ">=", "<=", ">", "<", "~"]), "n": st.integers(0, 3)}
    ),
    st.sampled_from([{}, "3", {"cmp": ">=", "n": "2"}]),
)
"""`count` of an event atom: none, a comparison (an odd one too), malformed shapes."""
HOURS = st.integers(-300, 48).map(lambda h: NOW + timedelta(hours=h))
KEY = st.builds(
    DeliveryKey,
    st.sampled_from([7, 8]),
    st.sampled_from(["n1", "n2"]),
    st.sampled_from(["", "n3:1", 0, 1]),
)


@st.composite
def leads(draw: st.DrawFn) -> LeadView:
    fields = draw(st.dictionaries(st.sampled_from(FIELD_NAMES), VALUE, max_size=5))
    if draw(st.booleans()):
        fields["email"] = draw(st.sampled_from(["li@Example.com", "nobody", 3]))
    scores = Scores(
        draw(st.sampled_from([0.0, 12.5, 40.0])),
        draw(st.sampled_from([0.0, 5.0, 60.0])),
        draw(GRADES),
        draw(GRADES),
    )
    tags = frozenset(draw(st.lists(TAGS_, max_size=2)))
    delta = draw(st.sampled_from([0.0, 10.0, -5.0]))
    return LeadView("L", fields, tags, draw(STAGES), None, delta, scores)


EVENTS = st.lists(
    st.builds(
        Event,
        st.sampled_from(["opened", "clicked", "replied", "bounced_hard", "webinar", "bounced"]),
        HOURS,
        st.one_of(st.none(), KEY),
        MESSAGES,
        st.sampled_from([None, "https://x.test/Pricing", "download"]),
    ),
    max_size=6,
)
DELIVERED = st.builds(
    Delivered, st.sampled_from(["n1", "n2"]), st.sampled_from(["", "n3:1"]), HOURS, st.just(1)
)
REFS = st.one_of(
    st.none(),
    st.builds(
        Refs,
        st.sampled_from([7, 8]),
        st.one_of(st.none(), DELIVERED),
        st.dictionaries(st.sampled_from(["first", "story"]), DELIVERED, max_size=2),
    ),
)


def atoms() -> st.SearchStrategy[Any]:
    compare = st.fixed_dictionaries(
        {
            "op": st.just("compare"),
            "subject": st.sampled_from(
                ["stage", "grade", "fit_grade", "score", "fit", "interest", "field", "mood"]
            ),
            "field": st.one_of(st.none(), FIELD),
            "cmp": st.sampled_from(
                ["==", "!=", ">=", "<=", ">", "<", "in", "not in", "matches", "~"]
            ),
            "value": st.one_of(
                VALUE, STAGES, GRADES, st.sampled_from(["(?i)vp", "(unclosed", r"\d"])
            ),
        }
    )
    engagement = st.fixed_dictionaries(
        {
            "op": st.sampled_from(["opened", "clicked", "replied", "bounced"]),
            "message": MESSAGES,
            "link": st.sampled_from([None, "pricing", "DOWNLOAD"]),
            "within": WITHIN,
        },
        optional={"count": COUNTS},
    )
    return st.one_of(
        compare,
        engagement,
        st.fixed_dictionaries({"op": st.just("tagged"), "tag": TAGS_}),
        st.fixed_dictionaries({"op": st.just("truthy"), "field": FIELD}),
        st.fixed_dictionaries(
            {"op": st.just("event"), "name": st.sampled_from(["webinar", "x"]), "within": WITHIN},
            optional={"count": COUNTS},
        ),
        st.sampled_from([{"op": "teleport"}, {}, None, "tagged", {"op": "and"}]),
    )


CONDITIONS = st.recursive(
    atoms(),
    lambda inner: st.one_of(
        st.fixed_dictionaries(
            {"op": st.sampled_from(["and", "or"]), "args": st.lists(inner, max_size=3)}
        ),
        st.fixed_dictionaries({"op": st.just("not"), "arg": inner}),
    ),
    max_leaves=6,
)

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def contexts(draw: st.DrawFn) -> Context:
    since = draw(st.one_of(st.none(), HOURS.filter(lambda t: t <= NOW)))
    return Context(draw(leads()), draw(EVENTS), NOW, draw(REFS), since)


@PROPERTY
@given(CONDITIONS, contexts())
def test_a_compiled_condition_answers_as_the_interpreter(cond: Any, ctx: Context) -> None:
    compiled = compile_condition(cond).test(ctx)
    expected = truth(cond, ctx)
    assert (compiled, type(compiled)) == (expected, type(expected))


@PROPERTY
@given(CONDITIONS, contexts(), leads(), REFS)
def test_what_a_condition_does_not_read_cannot_change_its_answer(
    cond: Any, ctx: Context, other: LeadView, refs: Refs | None
) -> None:
    # Given a compiled condition and its answer
    predicate = compile_condition(cond)
    before = predicate.test(ctx)

    # When each thing it does not read changes (as a step could change it)
    lead = ctx.lead
    if not predicate.reads & TAGS:
        lead = replace(lead, tags=other.tags)
    if not predicate.reads & STAGE:
        lead = replace(lead, stage=other.stage)
    if not predicate.reads & SCORE:
        lead = replace(lead, score_delta=other.score_delta)
    changed = replace(ctx, lead=lead, refs=ctx.refs if predicate.reads & SENT else refs)

    # Then the answer stays
    assert predicate.test(changed) == before


def test_and_or_stop_at_the_argument_that_decides_them() -> None:
    # Given conditions whose second argument cannot be evaluated (a span that is no number)
    ctx = Context(LeadView("L", tags=frozenset({"a"})), [], NOW)
    no, yes = {"op": "tagged", "tag": "zzz"}, {"op": "tagged", "tag": "a"}
    broken = {"op": "event", "name": "x", "within": "soon"}
    decided = {"op": "and", "args": [no, broken]}, {"op": "or", "args": [yes, broken]}
    undecided = {"op": "and", "args": [yes, broken]}, {"op": "or", "args": [no, broken]}

    # Then the first argument decides, without the second; else both fail alike
    for cond in decided:
        assert compile_condition(cond).test(ctx) is truth(cond, ctx) is (cond["op"] == "or")
    for cond in undecided:
        predicate = compile_condition(cond)
        with pytest.raises(ValueError):
            truth(cond, ctx)
        with pytest.raises(ValueError):
            predicate.test(ctx)

    # And a broken first argument fails as in the interpreter, though a cheap one follows it
    for cond in ({"op": "and", "args": [broken, no]}, {"op": "or", "args": [broken, yes]}):
        with pytest.raises(ValueError):
            truth(cond, ctx)
        with pytest.raises(ValueError):
            compile_condition(cond).test(ctx)


class _Unread(list[Event]):
    """Events that fail the test if anything walks over them."""

    def __iter__(self) -> Any:
        raise AssertionError("the events were read")


def test_and_or_ask_grades_stages_and_tags_before_walking_the_events() -> None:
    # Given the MQL agreement's "three visits in a week, from anyone not a poor fit"
    visits = {"op": "event", "name": "page_viewed", "within": 7 * 86400}
    visits["count"] = {"cmp": ">=", "n": 3}
    not_poor = {"op": "compare", "subject": "fit_grade", "cmp": "!=", "value": "D"}
    rule = {"op": "and", "args": [visits, not_poor]}
    customer = {"op": "or", "args": [visits, {"op": "tagged", "tag": "customer"}]}

    # When a poor fit (or a customer) is asked, with events that must not be walked over
    poor = LeadView("L", scores=Scores(fit_grade="D"), tags=frozenset({"customer"}))
    ctx = Context(poor, _Unread(), NOW)

    # Then the grade (or the tag) answers alone, as the interpreter would after the walk
    assert compile_condition(rule).test(ctx) is False
    assert compile_condition(customer).test(ctx) is True
    assert truth(rule, Context(poor, [], NOW)) is False


def test_reads_names_what_a_step_may_change() -> None:
    def reads(cond: dict[str, Any]) -> int:
        return compile_condition(cond).reads

    def compare(subject: str, name: str | None = None) -> dict[str, Any]:
        return {"op": "compare", "subject": subject, "field": name, "cmp": ">=", "value": 1}

    opened = {"op": "opened", "message": None, "link": None, "within": None}
    tagged = {"op": "tagged", "tag": "customer"}
    assert reads({"op": "or", "args": [tagged, compare("stage")]}) == TAGS | STAGE
    assert reads(compare("field", "lead.stage")) == reads({"op": "truthy", "field": "stage"})
    assert reads(compare("field", "lead.stage")) == STAGE
    assert reads(compare("field", "industry")) == 0
    assert reads(compare("score")) == SCORE
    assert reads(compare("fit")) == reads(compare("grade")) == 0
    assert reads({"op": "not", "arg": opened}) == SENT
    assert reads({"op": "event", "name": "x", "within": None}) == 0
