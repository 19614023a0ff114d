"""Audit: segments' SQL against the engine's Python evaluator, and scoring/MQL, on both databases.

The leads here are stored through the store's own functions (`upsert_lead`,
`record_event`, `deploy`) and read back as the runtime reads them
(`nurture.runtime.loading`), so the Python side is what a running campaign
sees, not a view patched for the comparison.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import dsl
from dsl.graph import Json
from nurture import db
from nurture.engine.conditions import Context, evaluate
from nurture.engine.predicates import compile_condition
from nurture.engine.state import LeadView
from nurture.models import Lead, LifecycleTransition, MqlRecord, Tag
from nurture.runtime.loading import lead_view, load_events
from nurture.segments import parse_where, to_sql
from nurture.store import deploy, items_of, record_event, transition
from nurture.store.leads import upsert_lead
from nurture.store.scoring import add_score

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)

SCORING = r"""
scoring "Audit"
  fit:
    +20 when lead.industry in ["saas", "finance"]
    +15 when lead.employees >= 500
    +15 when lead.title matches "(?i)\b(ceo|vp)\b"
    -20 when lead.email_domain in freemail
  interest:
    +5 per click
    +20 per event "webinar_attended"
    +40 per event "demo_requested"
    decay 50% every 30 days
  grade fit: A >= 40, B >= 25, C >= 10, else D
  mql when (fit grade in [A, B] and interest >= 50) or (event "demo_requested" and fit grade != D)
"""


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    engine = db.make_engine(migrated_url)
    yield engine
    engine.dispose()


def deploy_scoring(session: Session, source: str = SCORING) -> None:
    sources = {"scoring.nurture": source}
    analysis = dsl.analyze(sources)
    assert analysis.program is not None and not analysis.errors, analysis.diagnostics
    deploy(session, items_of(analysis.program, dsl.compile_program(analysis.program), sources), T)


def views(session: Session, now: datetime) -> list[tuple[LeadView, list[Any]]]:
    """Every lead as the runtime loads it (`nurture.runtime.loading`), with its events."""
    rows = session.execute(select(Lead.__table__).order_by(Lead.id)).all()
    tags: dict[int, list[str]] = {}
    for lead_id, tag in session.execute(select(Tag.lead_id, Tag.tag)):
        tags.setdefault(lead_id, []).append(tag)
    events = load_events(session, [r.id for r in rows], now)
    return [(lead_view(r, tags.get(r.id, ())), events.get(r.id, [])) for r in rows]


def by_python(session: Session, cond: Json, now: datetime) -> set[int]:
    """The leads the engine's evaluator (interpreter and compiled) selects; they must agree."""
    found = set()
    compiled = compile_condition(cond)
    for view, events in views(session, now):
        ctx = Context(view, events, now)
        verdict = evaluate(cond, ctx)
        assert verdict == (compiled.test(ctx) is True), (cond, view)
        if verdict:
            found.add(int(view.id))
    return found


def by_sql(session: Session, cond: Json, now: datetime) -> set[int]:
    return set(session.scalars(select(Lead.id).where(to_sql(cond, now))))


def where(expression: str, fields: str = "") -> Json:
    cond, _warnings = parse_where(expression, {"fields.nurture": fields} if fields else None)
    return cond


# ---------------------------------------------------------------- grades


def test_grade_conditions_select_alike_in_sql_and_in_the_runtime(engine: Engine) -> None:
    # Given leads imported under a deployed scoring model: grades A, C and D
    with Session(engine) as session:
        deploy_scoring(session)
        for fields in (
            {"email": "ada@acme.com", "title": "CEO", "industry": "saas", "employees": 900},
            {"email": "bo@corp.cn", "industry": "finance"},
            {"email": "cy@gmail.com", "title": "intern"},
        ):
            upsert_lead(session, fields, T)
        session.commit()
        assert session.scalars(select(Lead.grade).order_by(Lead.id)).all() == ["A", "C", "D"]

        # Then `grade` and `fit grade` select the same leads in SQL and as the runtime sees them
        for expression in (
            "grade == A",
            "fit grade in [A, B]",
            "grade >= C",
            "fit grade != D",
            "not grade == A",
            "grade < B",
        ):
            cond = where(expression)
            assert by_sql(session, cond, T) == by_python(session, cond, T), expression


# ---------------------------------------------------------------- MQL


def mqls(session: Session, lead_id: int) -> list[MqlRecord]:
    return list(session.scalars(select(MqlRecord).where(MqlRecord.lead_id == lead_id)))


def to_mql(session: Session, lead_id: int) -> list[LifecycleTransition]:
    query = select(LifecycleTransition).where(
        LifecycleTransition.lead_id == lead_id, LifecycleTransition.to_stage == "mql"
    )
    return list(session.scalars(query))


def test_a_profile_change_that_makes_the_mql_rule_hold_makes_the_lead_an_mql(
    engine: Engine,
) -> None:
    # Given a lead with no fit (grade D) that requested a demo: not an MQL, by the rule
    with Session(engine) as session:
        deploy_scoring(session)
        lead, _ = upsert_lead(session, {"email": "bo@corp.cn"}, T)
        record_event(session, lead.id, "custom", "demo_requested", T)
        assert (lead.stage, lead.grade) == ("lead", "D")

        # When a form fill tells us it is a SaaS CEO (fit 35, grade B)
        later = T + timedelta(hours=1)
        upsert_lead(session, {"email": "bo@corp.cn", "title": "CEO", "industry": "saas"}, later)
        session.commit()

        # Then it became an MQL at that moment, once, with the rule and the profile change
        assert (lead.stage, lead.grade) == ("mql", "B")
        [record] = mqls(session, lead.id)
        assert record.at == later and record.cause_event_id is None
        assert record.rule.startswith('scoring "Audit": mql when')
        [moved] = to_mql(session, lead.id)
        assert "profile" in moved.cause

        # And a further change neither emits it again nor demotes it
        upsert_lead(session, {"email": "bo@corp.cn", "title": "intern", "industry": "x"}, later)
        session.commit()
        assert lead.stage == "mql" and len(mqls(session, lead.id)) == 1


# ---------------------------------------------------------------- regular expressions

TITLES = ("CEO\n", "CEO", "VP\nSales", "a\nb", "VP, Sales", "数据分析", "x{,2}", "", "ab")
PATTERNS = (
    "CEO$",
    r"^\w+$",
    "^a.b$",
    "(?s)^a.b$",
    "(?m)^Sales$",
    "(?mi)^sales$",
    "(?m)P[^a]S",
    r"(?i)\bvp\b",
    "P.S",
    "^.*$",
    "x{,2}",
    "^a{,2}b",
    "[.$]",
    r"\.",
    r"O\Z",
    "[^a]$",
)


def test_matches_reads_patterns_as_python_does_on_both_databases(engine: Engine) -> None:
    # Given leads whose titles hold newlines and braces (imports keep what the form sent)
    with Session(engine) as session:
        session.add_all(Lead(title=title, attributes={"note": title}) for title in TITLES)
        session.commit()

        # Then every pattern selects, in SQL, the leads Python's `re.search` selects
        for pattern in PATTERNS:
            re.compile(pattern)
            for field in ("title", "note"):
                cond = {"op": "compare", "subject": "field", "field": field, "cmp": "matches"}
                cond["value"] = pattern
                assert by_sql(session, cond, T) == by_python(session, cond, T), (field, pattern)


# ---------------------------------------------------------------- numbers


LONG = 1234567890123456  # 16 digits: a double holds it, 15 significant digits do not
LONG_VALUES: tuple[Any, ...] = (LONG, str(LONG), "1,234,567,890,123,456", LONG + 1, 0.1, "0.1")


def test_numbers_with_many_digits_compare_as_python_compares_them(engine: Engine) -> None:
    # Given custom fields holding long numbers, as JSON numbers and as text
    with Session(engine) as session:
        session.add_all(Lead(attributes={"account": value}) for value in LONG_VALUES)
        session.commit()

        # Then equality, `in` and ordering against them select what Python selects
        for cmp, value in (
            ("==", LONG),
            ("!=", LONG),
            ("==", str(LONG)),
            ("in", [LONG, 7]),
            (">=", LONG),
            ("<", LONG + 1),
            ("==", 0.1),
            ("<=", 0.1),
            ("==", 1e16),
        ):
            cond = {"op": "compare", "subject": "field", "field": "account", "cmp": cmp}
            cond["value"] = value
            assert by_sql(session, cond, T) == by_python(session, cond, T), (cmp, value)


# ---------------------------------------------------------------- the command line


def test_fields_may_name_the_columns_every_row_has(migrated_url: str) -> None:
    from typer.testing import CliRunner

    from nurture.cli import app

    # Given a lead
    engine = db.make_engine(migrated_url)
    with Session(engine) as session:
        upsert_lead(session, {"email": "ada@acme.com", "first_name": "Ada", "tags": ["x"]}, T)
        session.commit()
    engine.dispose()

    # When the fields named are columns every row has, and a real one
    args = ["segment", "export", "--where", "score >= 0", "--url", migrated_url]
    result = CliRunner().invoke(app, [*args, "--fields", "id,tags,first_name,stage"])

    # Then they are no error, and each column comes once
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0].split(",")
    assert header[:5] == ["id", "email", "phone", "messaging_id", "first_name"]
    assert header.count("tags") == header.count("id") == 1


# ---------------------------------------------------------------- leads built by the store

STAGE_NAMES = ("lead", "mql", "SQL", "opportunity", "customer", "returned")
TAG_NAMES = ("customer", "Customer", "区域:华东", "vip ")
EVENT_NAMES = ("webinar_attended", "demo_requested", "clicked", "pricing_viewed")
SPANS = (None, 0, 86400, 29 * 86400, 30 * 86400, 31 * 86400)


def _atoms() -> st.SearchStrategy[Json]:
    numbers = st.sampled_from((-20, 0, 5, 10, 25, 35, 40, 45, 50, 57.5, 60, 100))

    def compare(subject: str, value: st.SearchStrategy[Any]) -> st.SearchStrategy[Json]:
        cmps = st.sampled_from(("==", "!=", ">=", "<=", ">", "<"))
        return st.builds(
            lambda cmp, v: {"op": "compare", "subject": subject, "cmp": cmp, "value": v},
            cmps,
            value,
        )

    letters = st.sampled_from(("A", "B", "C", "D", "E"))
    return st.one_of(
        compare("grade", letters),
        compare("fit_grade", letters),
        st.builds(
            lambda cmp, v: {"op": "compare", "subject": "grade", "cmp": cmp, "value": v},
            st.sampled_from(("in", "not in")),
            st.lists(letters, max_size=3),
        ),
        compare("stage", st.sampled_from(STAGE_NAMES)),
        compare("score", numbers),
        compare("fit", numbers),
        compare("interest", numbers),
        st.builds(lambda t: {"op": "tagged", "tag": t}, st.sampled_from(TAG_NAMES)),
        st.builds(
            lambda n, w: {"op": "event", "name": n, "within": w},
            st.sampled_from(EVENT_NAMES),
            st.sampled_from(SPANS),
        ),
        st.builds(
            lambda w: {"op": "clicked", "message": None, "link": "pricing", "within": w},
            st.sampled_from(SPANS),
        ),
    )


CONDITIONS = st.recursive(
    _atoms(),
    lambda inner: st.one_of(
        st.builds(lambda a: {"op": "and", "args": a}, st.lists(inner, max_size=3)),
        st.builds(lambda a: {"op": "or", "args": a}, st.lists(inner, max_size=3)),
        st.builds(lambda a: {"op": "not", "arg": a}, inner),
    ),
    max_leaves=5,
)


def build_leads(session: Session) -> None:
    """Leads imported, scored, tagged, moved along the funnel and given `score` steps."""
    deploy_scoring(session)
    people: list[tuple[dict[str, Any], list[tuple[str, str | None, timedelta]], float, str]] = [
        (
            {"email": "ada@acme.com", "title": "CEO", "industry": "saas", "employees": 900},
            [("custom", "webinar_attended", 30 * DAY), ("clicked", None, 2 * DAY)],
            5,
            "lead",
        ),
        (
            {"email": "bo@corp.cn", "industry": "finance", "tags": ["Customer", "vip "]},
            [("custom", "demo_requested", DAY)],
            2.5,
            "lead",
        ),
        ({"email": "cy@gmail.com", "title": "VP", "tags": ["customer"]}, [], -7, "lead"),
        (
            {"email": "dee@x.cn", "title": "vp sales", "employees": "1,200", "tags": ["区域:华东"]},
            [("custom", "pricing_viewed", 31 * DAY), ("clicked", None, 29 * DAY)],
            0,
            "sql",
        ),
        ({"email": "eve@y.cn"}, [("custom", "webinar_attended", 0 * DAY)], 0, "customer"),
    ]
    for fields, events, delta, stage in people:
        lead, _ = upsert_lead(session, fields, T - 60 * DAY)
        for kind, name, age in events:
            link = "https://x.test/Pricing" if kind == "clicked" else None
            record_event(session, lead.id, kind, name, T - age, now=T, link=link)
        if delta:
            add_score(session, lead.id, delta)
        if stage != "lead" and lead.stage == "lead":
            transition(session, lead, stage, "sales qualified it", T)
    session.commit()


def test_sql_and_the_runtime_select_alike_on_leads_the_store_built(engine: Engine) -> None:
    with Session(engine) as session:
        build_leads(session)
        grades = set(session.scalars(select(Lead.grade)))
        stages = set(session.scalars(select(Lead.stage)))
        assert {"A", "B", "D"} <= grades and {"lead", "mql", "sql", "customer"} <= stages

        @settings(max_examples=150, deadline=None, database=None)
        @given(cond=CONDITIONS)
        def agree(cond: Json) -> None:
            assert by_sql(session, cond, T) == by_python(session, cond, T), cond

        agree()


# ---------------------------------------------------------------- long chains

FIELD_VALUES: dict[str, tuple[Any, ...]] = {
    "title": ("CEO", "ceo", "VP", "vp sales", "", "Ünïcode", 900, True),
    "industry": ("saas", "Finance", "retail", "x"),
    "employees": (900, "900", "1200", "1,200", 900.0, "1e3", False),
    "email_domain": ("acme.com", "GMAIL.com", "corp.cn", "y.cn"),
    "stage": ("lead", "SQL", "customer"),
    "created_at": ("2026-01-01", "x"),
}
"""Values `lead.<field> ==` chains compare with: text in either case, numbers, flags."""


def _chain_terms() -> st.SearchStrategy[Json]:
    tags = st.sampled_from((*TAG_NAMES, "absent", "vip"))
    tagged = st.builds(lambda t: {"op": "tagged", "tag": t}, tags)
    field_equals = st.sampled_from(list(FIELD_VALUES)).flatmap(
        lambda name: st.builds(
            lambda v: {"op": "compare", "subject": "field", "field": name, "cmp": "==", "value": v},
            st.sampled_from(FIELD_VALUES[name]),
        )
    )
    return st.one_of(
        tagged,
        st.builds(lambda t: {"op": "not", "arg": t}, tagged),
        field_equals,
        _atoms(),
    )


CHAINS = st.recursive(
    _chain_terms(),
    lambda inner: (
        st.builds(
            lambda op, args: {"op": op, "args": args},
            st.sampled_from(("and", "or")),
            st.lists(inner, min_size=2, max_size=12),
        )
        | st.builds(lambda a: {"op": "not", "arg": a}, inner)
    ),
    max_leaves=24,
)


def test_long_chains_select_alike_in_sql_and_in_the_runtime(engine: Engine) -> None:
    # Given the leads the store built
    with Session(engine) as session:
        build_leads(session)
        many = [f"t:{k}" for k in range(150)]

        # When long chains of tagged, not tagged and lead.<field> == terms are compiled
        # into one set operation a group (nested and negated too), Then they select what
        # the runtime selects
        for op in ("and", "or"):
            for chain in (
                [{"op": "tagged", "tag": t} for t in (*many, *TAG_NAMES)],
                [{"op": "not", "arg": {"op": "tagged", "tag": t}} for t in (*many, "customer")],
                [
                    {"op": "tagged", "tag": t}
                    if k % 3
                    else {"op": "not", "arg": {"op": "tagged", "tag": t}}
                    for k, t in enumerate((*TAG_NAMES, *many, *TAG_NAMES))
                ],
                [
                    {"op": "compare", "subject": "field", "field": name, "cmp": "==", "value": v}
                    for name, values in FIELD_VALUES.items()
                    for v in values
                ],
            ):
                for cond in (
                    {"op": op, "args": chain},
                    {"op": "not", "arg": {"op": op, "args": chain}},
                ):
                    assert by_sql(session, cond, T) == by_python(session, cond, T), cond

        @settings(max_examples=150, deadline=None, database=None)
        @given(cond=CHAINS)
        def agree(cond: Json) -> None:
            assert by_sql(session, cond, T) == by_python(session, cond, T), cond

        agree()


def test_decay_halves_an_event_at_the_period_boundary_and_segments_read_the_result(
    engine: Engine,
) -> None:
    # Given a good-fit lead (A) with a webinar exactly one decay period (30 days) ago
    with Session(engine) as session:
        deploy_scoring(session)
        lead, _ = upsert_lead(session, {"email": "ada@acme.com", "title": "CEO"}, T - 60 * DAY)
        webinar = T - 30 * DAY
        just_before = rescore_at(session, lead.id, T - timedelta(microseconds=1), webinar)

        # Then a moment before the boundary it counts whole, at the boundary half
        assert just_before == 20.0
        recorded = record_event(session, lead.id, "clicked", None, T)
        assert recorded.scores.interest == 10.0 + 5.0
        session.commit()

        # And the segment's SQL reads the stored result as the runtime does
        for expression in ("interest >= 15", "interest <= 15", "score == 30"):
            cond = where(expression)
            assert by_sql(session, cond, T) == by_python(session, cond, T) == {lead.id}, expression


def rescore_at(session: Session, lead_id: int, now: datetime, webinar: datetime) -> float:
    recorded = record_event(session, lead_id, "custom", "webinar_attended", webinar, now=now)
    return recorded.scores.interest


# ---------------------------------------------------------------- accounts

ACCOUNT_WHERES = (
    'lead.account.name == "Acme Corp"',
    'lead.account.status in ["customer", "opportunity"]',
    'lead.account.owner == "amy@acme.com"',
    "lead.account.owner",
    "not lead.account.name",
    "lead.is_customer",
    'not lead.is_customer and lead.account.status == "prospect"',
    'lead.account.name matches "(?i)^acme"',
)


def test_account_fields_select_alike_in_sql_and_in_the_runtime(engine: Engine) -> None:
    # Given accounts imported as `nurture accounts import` stores them, and leads matched to
    # them by domain and by company name, and one that matches none
    from nurture.handoff.accounts import check_account, store_accounts

    rows = [
        {"name": "Acme Corp", "domains": "acme.com", "owner": "amy@acme.com"},
        {"name": "Globex GmbH", "domains": "globex.com", "status": "customer"},
        {"name": "初创科技有限公司", "owner": "tom@acme.com", "status": "opportunity"},
    ]
    accounts = [check_account({"status": "prospect", **row})[0] for row in rows]
    with Session(engine) as session:
        store_accounts(session, [a for a in accounts if a is not None], None, T)
        for fields in (
            {"email": "a@acme.com"},
            {"email": "b@globex.com"},
            {"email": "c@startup.cn", "company": "初创科技"},
            {"email": "d@nowhere.net", "company": "Nobody Ltd"},
        ):
            upsert_lead(session, fields, T)
        session.commit()
        assert len(set(session.scalars(select(Lead.account_id)))) == 4  # three and None

        # Then each condition in the language's spelling selects the same leads both ways
        for text in ACCOUNT_WHERES:
            cond = where(text)
            assert by_sql(session, cond, T) == by_python(session, cond, T), text
        assert len(by_sql(session, where('lead.account.name == "Acme Corp"'), T)) == 1
        assert len(by_sql(session, where("lead.is_customer"), T)) == 1
        assert len(by_sql(session, where("lead.account.owner"), T)) == 2


# ---------------------------------------------------------------- counts

COUNT_SPANS = (None, 86400, 3 * 86400, 7 * 86400, 14 * 86400)
VISITS: tuple[tuple[float, ...], ...] = (
    (),
    (0.5,),
    (1, 2, 3),  # three in a week
    (1, 5, 9, 13),  # one a week, never three
    (0, 0.25, 3, 7, 7, 20),  # two at the 7-day edge exactly
    (2, 4, 6, 8, 10),
)
"""Each lead's page views, in days before T (ages at the edge of a window count, as `>=`)."""


def _counted_atoms() -> st.SearchStrategy[Json]:
    counts = st.builds(
        lambda cmp, n: {"cmp": cmp, "n": n},
        st.sampled_from(("==", "!=", ">=", "<=", ">", "<")),
        st.integers(0, 5),
    )
    return st.one_of(
        st.builds(
            lambda w, c: {"op": "event", "name": "page_viewed", "within": w, "count": c},
            st.sampled_from(COUNT_SPANS),
            counts,
        ),
        st.builds(
            lambda op, w, c: {"op": op, "message": None, "link": None, "within": w, "count": c},
            st.sampled_from(("opened", "clicked")),
            st.sampled_from(COUNT_SPANS),
            counts,
        ),
        st.builds(
            lambda w, c: {
                "op": "clicked",
                "message": None,
                "link": "pricing",
                "within": w,
                "count": c,
            },
            st.sampled_from(COUNT_SPANS),
            counts,
        ),
    )


COUNTED = st.recursive(
    _counted_atoms(),
    lambda inner: st.one_of(
        st.builds(lambda a: {"op": "and", "args": a}, st.lists(inner, max_size=3)),
        st.builds(lambda a: {"op": "or", "args": a}, st.lists(inner, max_size=3)),
        st.builds(lambda a: {"op": "not", "arg": a}, inner),
    ),
    max_leaves=4,
)


def test_counts_select_alike_in_sql_and_in_the_runtime(engine: Engine) -> None:
    # Given leads with page views, opens and clicks at many ages, stored by the store
    with Session(engine) as session:
        for i, days in enumerate(VISITS):
            lead, _ = upsert_lead(session, {"email": f"v{i}@acme.com"}, T - 60 * DAY)
            for age in days:
                record_event(session, lead.id, "page_viewed", None, T - age * DAY, now=T)
            for age in days[: i % 4]:
                record_event(session, lead.id, "opened", None, T - age * DAY, now=T)
                link = "https://x.test/pricing" if i % 2 else "https://x.test/other"
                record_event(session, lead.id, "clicked", None, T - age * DAY, now=T, link=link)
        session.commit()

        # Then the key moment "three visits in a week" picks the lead that had them, alike
        three = where('event "page_viewed" count >= 3 within 7 days')
        assert by_sql(session, three, T) == by_python(session, three, T)
        assert len(by_sql(session, three, T)) == 3  # (1, 2, 3), the edge pair, (2, 4, 6)

        # And any counting condition selects the same leads in SQL and in the runtime
        @settings(max_examples=150, deadline=None, database=None)
        @given(cond=COUNTED)
        def agree(cond: Json) -> None:
            assert by_sql(session, cond, T) == by_python(session, cond, T), cond

        agree()


def test_three_visits_in_a_week_make_an_mql_at_the_third(engine: Engine) -> None:
    # Given the agreement's key moment as the MQL rule
    rule = """
scoring "Key moments"
  interest:
    +2 per visit
  mql when event "page_viewed" count >= 3 within 7 days
"""
    with Session(engine) as session:
        deploy_scoring(session, rule)
        steady, _ = upsert_lead(session, {"email": "steady@acme.com"}, T - 60 * DAY)
        burst, _ = upsert_lead(session, {"email": "burst@acme.com"}, T - 60 * DAY)

        # When one lead visits once a week for a month and the other three times in four days
        for week in range(4):
            record_event(session, steady.id, "page_viewed", None, T + week * 7 * DAY)
        for day in (0, 1):
            record_event(session, burst.id, "page_viewed", None, T + day * DAY)
        assert burst.stage == "lead"
        third = T + 4 * DAY
        record_event(session, burst.id, "page_viewed", None, third)
        session.commit()

        # Then only the burst is an MQL, from its third visit
        assert steady.stage == "lead" and not mqls(session, steady.id)
        [record] = mqls(session, burst.id)
        assert burst.stage == "mql" and record.at == third
