"""The core's frozen data: field lists that fast copies rely on, and the fast constructor."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from nurture.engine import Delivered, EnrollmentState, LeadView, Scores, Send, WaitingFor
from nurture.engine.state import (
    positional_builder,
    utc,
    with_closed,
    with_score_delta,
    with_scores,
    with_stage,
    with_suppressed,
    with_tags,
)
from tests.engine.conftest import MONDAY

LEAD = LeadView(
    "L",
    {"time_zone": "Asia/Shanghai"},
    frozenset({"a"}),
    "lead",
    None,
    5.0,
    Scores(1),
    {"wechat": "bounced_hard"},
)


def test_lead_copies_set_every_field() -> None:
    # `with_tags` and the others build a LeadView field by field: a new field must be added there
    assert [f.name for f in fields(LeadView)] == [
        "id",
        "fields",
        "tags",
        "stage",
        "suppressed",
        "score_delta",
        "scores",
        "closed",
    ]
    scores = Scores(fit=20, interest=3, fit_grade="C")
    assert with_tags(LEAD, frozenset({"b"})) == replace(LEAD, tags=frozenset({"b"}))
    assert with_stage(LEAD, "mql") == replace(LEAD, stage="mql")
    assert with_suppressed(LEAD, "bounced") == replace(LEAD, suppressed="bounced")
    assert with_score_delta(LEAD, -2.5) == replace(LEAD, score_delta=-2.5)
    assert with_scores(LEAD, scores) == replace(LEAD, scores=scores)
    assert with_closed(LEAD, {"sms": "stop"}) == replace(LEAD, closed={"sms": "stop"})


@pytest.mark.parametrize(
    "cls, values",
    [
        (
            EnrollmentState,
            (7, "n3", MONDAY, "waiting", MONDAY, None, {"n2": 1}, {}, None, None, None),
        ),
        (Send, ("n1", "email", "t", None, None, "", 0, None)),
        (Delivered, ("n1", "n2:1", MONDAY, 0)),
        (WaitingFor, ("n4", MONDAY, MONDAY + timedelta(days=3))),
        (LeadView, tuple(getattr(LEAD, f.name) for f in fields(LeadView))),
    ],
)
def test_the_positional_builder_builds_what_the_class_builds(
    cls: type, values: tuple[object, ...]
) -> None:
    built = positional_builder(cls)(*values)

    assert type(built) is cls and built == cls(*values)
    with pytest.raises(AttributeError):  # still frozen
        built.__setattr__(fields(cls)[0].name, None)


def test_utc_keeps_a_utc_moment_and_converts_others() -> None:
    assert utc(MONDAY) is MONDAY
    shanghai = datetime(2026, 3, 2, 8, tzinfo=timezone(timedelta(hours=8)))
    assert utc(shanghai) == MONDAY and utc(shanghai).tzinfo is UTC
    with pytest.raises(ValueError):
        utc(datetime(2026, 3, 2))
