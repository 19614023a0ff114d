"""`parse_where`: an expression checked as a segment, its diagnostics located on it."""

from __future__ import annotations

import pytest

from nurture.segments import WhereError, fields_source, parse_where, wrap


def test_an_expression_compiles_like_a_segment_line() -> None:
    cond, warnings = parse_where('tagged "industry:saas" and score >= 50')
    assert cond == {
        "op": "and",
        "args": [
            {"op": "tagged", "tag": "industry:saas"},
            {"op": "compare", "subject": "score", "field": None, "cmp": ">=", "value": 50},
        ],
    }
    assert warnings == ()


def test_each_line_of_an_expression_must_hold() -> None:
    cond, _ = parse_where('tagged "a"\nstage >= mql')
    assert cond["op"] == "and" and len(cond["args"]) == 2


def test_an_error_on_a_later_line_is_located_on_that_line() -> None:
    with pytest.raises(WhereError) as caught:
        parse_where('tagged "a"\nstage >= mqll')
    (found,) = caught.value.diagnostics
    assert (found.span.path, found.span.line, found.span.column) == ("--where", 2, 10)
    assert found.source_line == "stage >= mqll"
    assert found.render().splitlines()[:3] == [
        "--where:2:10: error: unknown stage `mqll` [unknown-stage]",
        "    stage >= mqll",
        "             ^^^^",
    ]


def test_custom_fields_come_from_the_sources_given() -> None:
    with pytest.raises(WhereError):
        parse_where("lead.budget > 10")
    cond, _ = parse_where("lead.budget > 10", {"f": fields_source({"budget": "number"})})
    assert cond["field"] == "budget"


def test_errors_in_the_other_files_are_reported_where_they_are() -> None:
    with pytest.raises(WhereError) as caught:
        parse_where("score > 1", {"broken.nurture": 'segment "x"\n  scor > 1\n'})
    assert [d.span.path for d in caught.value.diagnostics] == ["broken.nurture"]


def test_the_wrapper_indents_every_line() -> None:
    assert wrap("a\nb") == 'segment "--where"\n  a\n  b\n'
    assert fields_source({}) == ""
