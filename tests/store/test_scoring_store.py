"""Scores stored on the lead, events recorded, and the MQL rule firing once; both databases."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

import dsl
from nurture import db
from nurture.models import Event, Lead, LifecycleTransition, MqlRecord
from nurture.store import Rules, UnknownLead, deploy, items_of, mark_mql, record_event, rescore

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)

SCORING = r"""
scoring "Test model"
  fit:
    +20 when lead.industry in ["saas", "finance"]
    +15 when lead.employees >= 500
    +15 when lead.title matches "(?i)\b(ceo|vp)\b"
    -20 when lead.email_domain in freemail
  interest:
    +1 per open
    +5 per click
    +20 per event "webinar_attended"
    decay 50% every 30 days
  grade fit: A >= 40, B >= 25, C >= 10, else D
  mql when fit grade in [A, B] and interest >= 50
"""

ROUTING = """
team "inbound"
  member "amy@tidewater.io"

routing
  assign round robin team "inbound" otherwise
  accept within 24 hours else reassign
"""


def _model() -> dict[str, Any]:
    model = dsl.build({"scoring.nurture": SCORING}).scoring
    assert model is not None
    return model


MODEL = _model()
RULES = Rules(MODEL, {"sla": {"seconds": 86400, "action": "reassign"}})


def good_fit(session: Session, email: str = "ada@corp.com") -> Lead:
    """A SaaS VP at a large company: fit 20 + 15 + 15 = 50, grade A."""
    lead = Lead(
        email=email, title="VP Marketing", attributes={"industry": "saas", "employees": 800}
    )
    session.add(lead)
    session.flush()
    return lead


def mql_records(session: Session, lead_id: int) -> list[MqlRecord]:
    return list(session.scalars(select(MqlRecord).where(MqlRecord.lead_id == lead_id)))


def to_mql(session: Session, lead_id: int) -> list[LifecycleTransition]:
    return list(
        session.scalars(
            select(LifecycleTransition).where(
                LifecycleTransition.lead_id == lead_id, LifecycleTransition.to_stage == "mql"
            )
        )
    )


# ---------------------------------------------------------------- scores


def test_rescoring_after_events_gives_the_hand_computed_scores(session: Session) -> None:
    # Given a good-fit lead with opens, clicks and webinars of different ages
    lead = good_fit(session)
    for event_type, name, age in [
        ("opened", None, 45 * DAY),  # 1 point, one period old: 0.5
        ("clicked", None, 45 * DAY),  # 5 points, halved: 2.5
        ("custom", "webinar_attended", 10 * DAY),  # 20, fresh: 20
        ("custom", "webinar_attended", 61 * DAY),  # 20, two periods: 5
        ("page_viewed", None, DAY),  # no rule: nothing
        ("opened", None, timedelta(0)),  # 1, now: 1
    ]:
        record_event(session, lead.id, event_type, name, T - age, now=T, rules=RULES)

    # Then the lead holds fit 50, interest 29 and grade A
    session.commit()
    session.expire_all()
    stored = session.get(Lead, lead.id)
    assert stored is not None
    assert (stored.fit, stored.interest, stored.grade) == (50, 29.0, "A")

    # And thirty days later, with no new event, interest has decayed one more period
    scores = rescore(session, lead.id, MODEL, T + 30 * DAY)
    assert scores.interest == 0.25 + 1.25 + 10 + 2.5 + 0.5
    assert (scores.fit, scores.fit_grade) == (50, "A")
    assert stored.interest == scores.interest


def test_a_freemail_lead_with_no_fit_is_graded_d(session: Session) -> None:
    lead = Lead(email="someone@gmail.com", attributes={"industry": "retail"})
    session.add(lead)
    session.flush()

    scores = rescore(session, lead.id, MODEL, T)

    assert (scores.fit, scores.grade) == (-20, "D")
    assert (lead.fit, lead.grade) == (-20, "D")


def test_recording_an_event_stores_it_and_moves_last_activity(session: Session) -> None:
    lead = good_fit(session)

    recorded = record_event(
        session, lead.id, "clicked", None, T, link="https://x.io/pricing", rules=RULES
    )
    record_event(session, lead.id, "delivered", None, T + DAY, rules=RULES)
    record_event(session, lead.id, "opened", None, T - DAY, rules=RULES)  # late, older
    session.commit()

    assert recorded.event.id is not None
    assert recorded.event.link == "https://x.io/pricing"
    assert lead.last_activity_at == T  # a delivery is not the lead doing something
    assert session.scalar(select(func.count()).select_from(Event)) == 3


def test_an_unsubscribe_suppresses_the_lead(session: Session) -> None:
    lead = good_fit(session)

    record_event(session, lead.id, "unsubscribed", None, T, rules=RULES)

    assert lead.unsubscribed_at == T
    assert lead.suppressed


@pytest.mark.parametrize(
    ("event_type", "name", "error"),
    [("clicky", None, ValueError), ("custom", None, ValueError), ("opened", None, UnknownLead)],
    ids=["unknown type", "custom without a name", "unknown lead"],
)
def test_bad_events_are_refused(
    session: Session, event_type: str, name: str | None, error: type[Exception]
) -> None:
    lead_id = good_fit(session).id if error is not UnknownLead else 999
    with pytest.raises(error):
        record_event(session, lead_id, event_type, name, T, rules=RULES)


# ---------------------------------------------------------------- the MQL rule


def test_the_mql_rule_fires_once_with_its_cause(session: Session) -> None:
    # Given a good-fit lead with interest 40
    lead = good_fit(session)
    for hours in (1, 2):
        webinar = T - timedelta(hours=hours)
        record_event(session, lead.id, "custom", "webinar_attended", webinar, now=T, rules=RULES)

    # When a click brings interest to 45, and a third webinar to 65
    assert record_event(session, lead.id, "clicked", None, T, rules=RULES).mql is None
    recorded = record_event(session, lead.id, "custom", "webinar_attended", T, rules=RULES)

    # Then the lead is an MQL with the scores of that moment, the rule and the event
    mql = recorded.mql
    assert mql is not None
    assert lead.stage == "mql"
    assert (mql.fit, mql.interest, mql.grade) == (50, 65.0, "A")
    assert mql.rule == 'scoring "Test model": mql when fit grade in [A, B] and interest >= 50'
    assert mql.cause_event_id == recorded.event.id
    assert (mql.at, mql.sla_due_at) == (T, T + timedelta(hours=24))
    [transition] = to_mql(session, lead.id)
    assert transition.from_stage == "lead"
    assert transition.cause == (
        f'MQL rule of scoring "Test model" held after event "webinar_attended" #{recorded.event.id}'
    )

    # And more events never emit it again
    for _ in range(3):
        assert record_event(session, lead.id, "clicked", None, T + DAY, rules=RULES).mql is None
    session.commit()
    assert len(mql_records(session, lead.id)) == 1
    assert len(to_mql(session, lead.id)) == 1


def test_a_lead_past_mql_is_not_demoted(session: Session) -> None:
    # Given a sales-qualified lead whose behaviour would meet the MQL rule
    lead = good_fit(session)
    lead.stage = "sql"
    session.flush()

    for _ in range(3):
        record_event(session, lead.id, "custom", "webinar_attended", T, rules=RULES)

    # Then it stays SQL, and no MQL is recorded, not even when asked directly
    assert mark_mql(session, lead, "campaign step", "mql statement", None, T, None) is None
    session.commit()
    session.expire_all()
    assert session.scalar(select(Lead.stage).where(Lead.id == lead.id)) == "sql"
    assert mql_records(session, lead.id) == []
    assert to_mql(session, lead.id) == []


def test_mark_mql_twice_records_once(session: Session) -> None:
    lead = good_fit(session)

    first = mark_mql(session, lead, 'campaign "Welcome" step n7', "mql statement", None, T, None)
    again = mark_mql(session, lead, 'campaign "Welcome" step n7', "mql statement", None, T, None)

    assert first is not None and first.sla_due_at is None
    assert again is None
    assert len(mql_records(session, lead.id)) == 1


def test_deployed_rules_are_used_by_default(session: Session) -> None:
    # Given a deployed scoring model and routing with a 24-hour SLA
    sources = {"scoring.nurture": SCORING, "routing.nurture": ROUTING}
    analysis = dsl.analyze(sources)
    assert analysis.program is not None and not analysis.errors
    compiled = dsl.compile_program(analysis.program)
    deploy(session, items_of(analysis.program, compiled, sources), T)
    lead = good_fit(session)

    # When events arrive without rules passed in
    for _ in range(3):
        recorded = record_event(session, lead.id, "custom", "webinar_attended", T)

    # Then the deployed model scored them and the deployed SLA started the clock
    assert recorded.scores.interest == 60
    mql = recorded.mql
    assert mql is not None and mql.sla_due_at == T + timedelta(hours=24)


# ---------------------------------------------------------------- concurrency


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    db.upgrade(pg_url)
    engine = db.make_engine(pg_url)
    yield engine
    engine.dispose()


def _race(engine: Engine, work: Callable[[Session, Lead], Any], workers: int = 4) -> list[Any]:
    """Run `work(session)` in `workers` threads at once, each committing its own session."""
    start = threading.Barrier(workers)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with db.session_factory(engine)() as session:
                lead = session.get(Lead, 1)
                assert lead is not None
                start.wait(timeout=10)
                result = work(session, lead)
                time.sleep(0.2)  # hold the row while the others try
                session.commit()
                results.append(result)
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert len(results) == workers
    return results


def test_concurrent_workers_emit_one_mql_on_postgresql(pg_engine: Engine) -> None:
    # Given a good-fit lead that every worker sees at stage `lead`
    with db.session_factory(pg_engine)() as session:
        assert good_fit(session).id == 1
        session.commit()

    # When four workers mark it MQL at the same moment
    results = _race(
        pg_engine,
        lambda session, lead: mark_mql(session, lead, "race", "mql statement", None, T, None),
    )

    # Then exactly one of them recorded it
    assert sum(r is not None for r in results) == 1
    with db.session_factory(pg_engine)() as session:
        assert len(mql_records(session, 1)) == 1
        assert len(to_mql(session, 1)) == 1


def test_concurrent_events_emit_one_mql_on_postgresql(pg_engine: Engine) -> None:
    # Given a good-fit lead one webinar short of the MQL rule (interest 40)
    with db.session_factory(pg_engine)() as session:
        lead = good_fit(session)
        for _ in range(2):
            record_event(session, lead.id, "custom", "webinar_attended", T, rules=RULES)
        session.commit()

    # When four workers each record a webinar at the same moment
    results = _race(
        pg_engine,
        lambda session, lead: (
            record_event(session, lead.id, "custom", "webinar_attended", T, rules=RULES).mql
        ),
    )

    # Then the lead became MQL once
    assert sum(r is not None for r in results) == 1
    with db.session_factory(pg_engine)() as session:
        assert len(mql_records(session, 1)) == 1
        assert len(to_mql(session, 1)) == 1
