"""Each condition form selects exactly the expected leads, in SQL, on SQLite and PostgreSQL.

Every case also checks the SQL against the Python evaluator
(`nurture.engine.conditions`) on the same rows: one meaning in both places.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import CompileError

import dsl
from dsl.graph import Json
from nurture.models import Lead
from nurture.segments import to_sql
from nurture.segments.dialect import postgres_pattern
from tests.segments.conftest import Loaded
from tests.segments.dataset import FIELDS_BLOCK, NOW

CASES: list[tuple[str, set[str]]] = [
    # tags
    ('tagged "industry:saas"', {"ada", "eve"}),
    ('tagged "区域:华东"', {"ada", "gus"}),
    ('not tagged "customer"', {"ada", "cy", "dee", "fay", "gus"}),
    # events: a custom event's own name, a future event ignored, `within` as "in the last"
    ('event "webinar_attended"', {"ada", "gus"}),
    ('event "webinar_attended" within 30 days', {"ada"}),
    ('event "pricing_viewed" within 90 days', set()),
    ('event "pricing_viewed"', {"cy"}),
    ('event "custom"', {"eve"}),
    ("opened", {"ada", "cy"}),
    ("opened within 1 day", {"cy"}),
    ('clicked "pricing"', {"ada"}),
    ('clicked "download"', {"bo"}),
    ("clicked within 30 days", {"ada"}),
    ("bounced", {"bo", "eve"}),
    ("bounced within 7 days", {"bo"}),
    ("replied", {"dee"}),
    # scores, grades, stages
    ("score >= 50", {"ada", "bo", "gus"}),
    ("fit >= 30", {"ada", "dee", "gus"}),
    ("interest < 20", {"cy", "dee", "eve", "fay"}),
    ("grade >= B", {"ada", "dee", "gus"}),
    ("fit grade in [A, B]", {"ada", "dee", "gus"}),
    ("stage < mql", {"ada", "eve", "gus"}),
    ("stage >= sql", {"cy", "dee", "fay"}),
    ('lead.stage == "MQL"', {"bo"}),
    # text, numbers written any way, true/false spelled any way
    ('lead.industry == "saas"', {"ada", "eve"}),
    ('lead.industry in ["saas", "finance"]', {"ada", "bo", "eve"}),
    ('lead.industry != "saas"', {"bo", "cy", "gus"}),
    ("lead.employees > 100", {"ada", "eve"}),
    ("lead.employees <= 80", {"bo", "cy", "gus"}),
    ("lead.budget >= 1000", {"ada", "gus"}),
    ("lead.is_customer", {"bo", "cy", "gus"}),
    ("not lead.is_customer", {"ada", "dee", "eve", "fay"}),
    ("lead.is_customer == true", {"bo", "cy", "gus"}),
    ("lead.is_customer == false", {"ada", "dee", "eve"}),
    ('lead.first_name == "波"', {"bo"}),
    ('lead.region in ["Shanghai", "Jiangsu", "Zhejiang"]', {"ada", "gus"}),
    ('lead.source == "webinar"', {"gus"}),
    ('lead.company == ""', set()),
    # email_domain: the attribute, else the email column, else the email attribute
    ("lead.email_domain in freemail", {"bo", "cy"}),
    ('lead.email_domain == "override.cn"', {"dee"}),
    ('lead.email_domain == "acme.com"', {"ada", "eve"}),
    # lists: any element; a single value counts as a one-element list
    ('lead.interests in ["ai"]', {"ada", "eve"}),
    ('lead.interests not in ["ai"]', {"bo", "dee"}),
    ("lead.notes", {"cy"}),
    # patterns (word boundaries work on PostgreSQL too), dates
    ('lead.title matches "(?i)\\bc[et]o\\b"', {"ada", "dee"}),
    ('lead.phone matches "^139"', {"cy"}),
    ('lead.launch >= "2025-01-01"', {"dee"}),
    ('lead.created_at >= "2025-06-01"', {"bo", "cy", "eve"}),
    ('lead.last_activity_at < "2026-02-25"', {"dee"}),
    # and / or / not, and the lines of a segment
    ('(tagged "customer" or score >= 100) and not bounced', {"gus"}),
    ('tagged "industry:saas"\n  not tagged "customer"', {"ada"}),
]

ALL = {"ada", "bo", "cy", "dee", "eve", "fay", "gus"}
RAW: list[tuple[Json, set[str]]] = [
    ({"op": "and", "args": []}, ALL),
    ({"op": "or", "args": []}, set()),
    ({"op": "nonsense"}, set()),
    ("not a condition", set()),
    ({"op": "not", "arg": {"op": "nonsense"}}, ALL),
    ({"op": "opened", "message": "whitepaper", "link": None, "within": None}, set()),
    (
        {"op": "compare", "subject": "field", "field": "title", "cmp": "matches", "value": "("},
        set(),
    ),
    (
        {"op": "compare", "subject": "field", "field": "employees", "cmp": "==", "value": "80"},
        {"bo"},
    ),
    (
        {"op": "compare", "subject": "score", "field": None, "cmp": "==", "value": True},
        ALL - {"fay"},
    ),
    (
        {"op": "compare", "subject": "field", "field": "interests", "cmp": "in", "value": [3]},
        {"dee"},
    ),
    (
        {"op": "compare", "subject": "field", "field": "interests", "cmp": "in", "value": [""]},
        {"dee"},
    ),
    ({"op": "compare", "subject": "field", "field": "score_delta", "cmp": ">", "value": 0}, set()),
    ({"op": "compare", "subject": "weather", "field": None, "cmp": "==", "value": 1}, set()),
]


def compiled(expression: str) -> Json:
    """The condition JSON of a one-segment source using the dataset's custom fields."""
    program = dsl.build({"test.nurture": f'{FIELDS_BLOCK}segment "s"\n  {expression}\n'})
    return program.segments["s"]


def selected(loaded: Loaded, cond: Json) -> set[str]:
    """The labels of the leads the SQL selects."""
    labels = {i: label for label, i in loaded.ids.items()}
    with loaded.engine.connect() as connection:
        found = connection.scalars(select(Lead.id).where(to_sql(cond, NOW)))
        return {labels[i] for i in found}


def evaluated(loaded: Loaded, cond: Json) -> set[str]:
    """The labels of the leads the Python evaluator selects."""
    labels = {i: label for label, i in loaded.ids.items()}
    return {labels[i] for i in loaded.reference.ids(cond)}


@pytest.mark.parametrize(("expression", "expected"), CASES, ids=[c[0] for c in CASES])
def test_a_condition_selects_the_expected_leads(
    loaded: Loaded, expression: str, expected: set[str]
) -> None:
    # Given the dataset, When a compiled condition runs as SQL
    cond = compiled(expression)

    # Then it selects exactly the expected leads, as the Python evaluator does
    assert selected(loaded, cond) == expected
    assert evaluated(loaded, cond) == expected


@pytest.mark.parametrize(("cond", "expected"), RAW, ids=[str(c[0])[:60] for c in RAW])
def test_raw_condition_json_means_what_the_evaluator_says(
    loaded: Loaded, cond: Json, expected: set[str]
) -> None:
    assert selected(loaded, cond) == expected
    assert evaluated(loaded, cond) == expected


def test_the_condition_is_one_statement_with_no_per_lead_queries(loaded: Loaded) -> None:
    # Given a condition using tags, events, scores and custom fields
    cond = compiled(
        'tagged "industry:saas" and event "webinar_attended" within 30 days '
        'and score >= 50 and lead.interests in ["ai"] and lead.email_domain == "acme.com"'
    )
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement != "BEGIN":  # SQLite's explicit BEGIN (`nurture.db`)
            statements.append(statement)

    # When it runs
    event.listen(loaded.engine, "before_cursor_execute", count)
    try:
        assert selected(loaded, cond) == {"ada"}
    finally:
        event.remove(loaded.engine, "before_cursor_execute", count)

    # Then one SELECT did the work
    assert len(statements) == 1
    assert statements[0].lstrip().upper().startswith("SELECT")


def test_now_moves_the_within_window(loaded: Loaded) -> None:
    # Given "in the last 30 days", When it is evaluated 30 days later
    cond = compiled('event "webinar_attended" within 30 days')
    later = NOW + timedelta(days=30)
    labels = {i: label for label, i in loaded.ids.items()}
    with loaded.engine.connect() as connection:
        found = {labels[i] for i in connection.scalars(select(Lead.id).where(to_sql(cond, later)))}

    # Then the events of then have dropped out, and cy's event (then in the future) counts
    assert found == {"cy"}


def test_another_database_is_refused_by_name() -> None:
    # Given a condition over a custom field, whose SQL is written per dialect
    cond = to_sql(compiled('lead.budget >= 100 and lead.title matches "^VP"'), NOW)

    # Then a database other than SQLite and PostgreSQL gets a CompileError naming the two
    with pytest.raises(CompileError, match="SQLite and PostgreSQL, not mysql"):
        select(Lead.id).where(cond).compile(dialect=mysql.dialect())


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_sql({"op": "tagged", "tag": "x"}, NOW.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("python", "postgres"),
    [
        (r"\bceo\b", r"\yceo\y"),
        (r"\Bx", r"\Yx"),
        (r"\\b", r"\\b"),
        (r"[\b]", r"[\b]"),
        (r"(?i)^a.*\d+$", r"(?i)^a[^\n]*\d+(?=\n?$)"),  # Python meaning
        (r"(?P<role>c[et]o)\b", r"(c[et]o)\y"),
        (r"[]\b]\b", r"[]\b]\y"),
        (r"[^]x]\b", r"[^]x]\y"),
    ],
)
def test_word_boundaries_are_translated_for_postgresql(python: str, postgres: str) -> None:
    assert postgres_pattern(python) == postgres
