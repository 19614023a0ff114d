"""An MQL reaches its owner in its own transaction; the SLA clock reassigns; sales answer.

Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nurture import db
from nurture.handoff import sla
from nurture.handoff.answers import (
    AnswerError,
    accept,
    find_lead,
    give_back,
    report_stage,
    set_away,
)
from nurture.models import Assignment, Enrollment, Lead, LifecycleTransition, MqlRecord
from nurture.reports import funnel
from nurture.runtime.deploying import deploy_sources
from nurture.store import Rules, record_event
from tests.handoff.test_route import routing
from tests.store.test_scoring_store import MODEL, good_fit

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
RULES = Rules(MODEL, routing())


def qualify(session: Session, lead: Lead, rules: Rules, at: datetime = T) -> MqlRecord | None:
    """Three webinars: interest 60, and with a good fit the MQL rule holds."""
    mql = None
    for _ in range(3):
        mql = record_event(session, lead.id, "custom", "webinar_attended", at, rules=rules).mql
    return mql


def east_lead(session: Session, email: str) -> Lead:
    lead = good_fit(session, email)
    lead.attributes = {**lead.attributes, "region": "Shanghai"}
    session.flush()
    return lead


def sweep(session: Session, now: datetime, rules: Rules = RULES) -> list[int]:
    return sla.sweep(session, now, 10, rules.routing)


def assignments(session: Session, lead_id: int) -> list[Assignment]:
    query = select(Assignment).where(Assignment.lead_id == lead_id).order_by(Assignment.id)
    return list(session.scalars(query))


def test_an_mql_gets_its_owner_and_the_reason_in_its_own_transaction(session: Session) -> None:
    lead = east_lead(session, "ada@corp.com")

    mql = qualify(session, lead, RULES)
    session.commit()

    assert mql is not None
    session.expire_all()
    assert (lead.owner, mql.owner, mql.team) == ("wang.fang@t.io", "wang.fang@t.io", "east")
    assert mql.sla_due_at == T + 24 * HOUR
    [given] = assignments(session, lead.id)
    assert (given.owner, given.how, given.rule, given.mql_id) == (
        "wang.fang@t.io",
        "round_robin",
        3,
        mql.id,
    )
    assert given.cause.startswith('MQL: scoring "Test model": mql when')
    assert given.reason.endswith("team east → wang.fang@t.io, round robin")


def test_round_robin_is_kept_in_the_database_across_restarts(migrated_url: str) -> None:
    owners: Counter[str] = Counter()
    for restart in range(3):  # a new engine each time, as a restarted worker has
        engine = db.make_engine(migrated_url)
        with db.session_factory(engine)() as session:
            for n in range(3):
                lead = east_lead(session, f"lead{restart}-{n}@corp.com")
                mql = qualify(session, lead, RULES)
                assert mql is not None and mql.owner is not None
                owners[mql.owner] += 1
                session.commit()
        engine.dispose()

    assert owners == {"li.na@t.io": 3, "wang.fang@t.io": 6}


def test_an_mql_nobody_accepts_is_reassigned_then_escalated_then_left(session: Session) -> None:
    lead = east_lead(session, "ada@corp.com")
    mql = qualify(session, lead, RULES)
    assert mql is not None and mql.owner == "wang.fang@t.io"
    session.commit()

    assert sweep(session, T + 23 * HOUR) == []
    assert sweep(session, T + 25 * HOUR) == [mql.id]
    assert (lead.owner, mql.sla_due_at) == ("li.na@t.io", T + 49 * HOUR)
    assert sweep(session, T + 50 * HOUR) == [mql.id]
    assert (lead.owner, mql.escalated_at) == ("boss@t.io", T + 50 * HOUR)
    assert sweep(session, T + 75 * HOUR) == [mql.id]
    session.commit()

    assert (lead.owner, mql.sla_due_at) == ("boss@t.io", None)
    words = [(a.owner, a.cause) for a in assignments(session, lead.id)]
    assert words[1:] == [
        ("li.na@t.io", "not accepted within 1 day by wang.fang@t.io"),
        ("boss@t.io", "not accepted within 1 day by li.na@t.io"),
        (None, "not accepted within 1 day; nobody left to reassign to"),
    ]
    assert sweep(session, T + 200 * HOUR) == []
    taken = {k.name: k.reassigned for k in funnel(session, T + 200 * HOUR).sales.sla_by_owner}
    assert taken == {"boss@t.io": 0, "li.na@t.io": 1, "wang.fang@t.io": 1}  # it stayed with boss
    moved = select(Assignment.previous).where(
        Assignment.owner.is_not(None), Assignment.previous.is_not(None)
    )
    assert sorted(session.scalars(moved)) == ["li.na@t.io", "wang.fang@t.io"]


def test_accepting_stops_the_clock(session: Session) -> None:
    lead = east_lead(session, "ada@corp.com")
    mql = qualify(session, lead, RULES)
    assert mql is not None

    done = accept(session, lead, "Wang.Fang@t.io", T + HOUR)

    assert done.said == f"lead {lead.id} accepted by wang.fang@t.io"
    assert mql.accepted_at == T + HOUR
    assert sweep(session, T + 30 * HOUR) == []
    assert accept(session, lead, "wang.fang@t.io", T + 2 * HOUR).changed is False


def test_stages_move_forward_with_amounts_and_lost_goes_back_to_nurture(session: Session) -> None:
    lead = east_lead(session, "ada@corp.com")
    mql = qualify(session, lead, RULES)
    assert mql is not None

    report_stage(session, lead, "sql", "wang.fang@t.io", T + HOUR)
    report_stage(session, lead, "opportunity", "wang.fang@t.io", T + 2 * HOUR, amount="12,000")
    with pytest.raises(AnswerError, match="cannot go from opportunity to sql"):
        report_stage(session, lead, "sql", "wang.fang@t.io", T + 3 * HOUR)
    won = report_stage(session, lead, "won", "wang.fang@t.io", T + 4 * HOUR, amount="50000.5")

    assert mql.accepted_at == T + HOUR  # reporting sql accepted the MQL
    assert won.said == f"lead {lead.id} is customer now, amount 50000.50"
    rows = session.scalars(
        select(LifecycleTransition).where(LifecycleTransition.lead_id == lead.id)
    ).all()
    assert [(r.to_stage, r.by, r.amount and str(r.amount)) for r in rows[1:]] == [
        ("sql", "wang.fang@t.io", None),
        ("opportunity", "wang.fang@t.io", "12000.00"),
        ("customer", "wang.fang@t.io", "50000.50"),
    ]


def test_a_lost_deal_returns_the_lead_with_its_reason(session: Session) -> None:
    lead = east_lead(session, "ada@corp.com")
    mql = qualify(session, lead, RULES)
    assert mql is not None
    report_stage(session, lead, "opportunity", "wang.fang@t.io", T + HOUR)

    report_stage(session, lead, "lost", "wang.fang@t.io", T + 2 * HOUR, reason="chose a rival")

    assert (lead.stage, lead.owner) == ("returned", None)
    assert mql.return_reason == "lost: chose a rival"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda s, lead: accept(s, lead, "li.na@t.io", T), "belongs to wang.fang@t.io, not li.na"),
        (lambda s, lead: give_back(s, lead, "wang.fang@t.io", "  ", T), "needs a reason"),
        (
            lambda s, lead: report_stage(s, lead, "won", "wang.fang@t.io", T, amount="lots"),
            "'lots' is not a number",
        ),
        (lambda s, lead: report_stage(s, lead, "closed", "wang.fang@t.io", T), "unknown stage"),
        (lambda s, lead: report_stage(s, lead, "lost", "wang.fang@t.io", T), "needs a reason"),
        (lambda s, lead: find_lead(s, "nobody@corp.com"), "no lead 'nobody@corp.com'"),
    ],
)
def test_a_refused_answer_says_why_and_changes_nothing(
    session: Session, answer: Any, message: str
) -> None:
    lead = east_lead(session, "ada@corp.com")
    mql = qualify(session, lead, RULES)
    assert mql is not None
    session.commit()

    with pytest.raises(AnswerError, match=message):
        answer(session, lead)
    session.rollback()

    assert (lead.stage, lead.owner, mql.accepted_at) == ("mql", "wang.fang@t.io", None)


def test_a_member_away_gets_nothing_and_comes_back_without_a_burst(session: Session) -> None:
    set_away(session, routing(), "wang.fang@t.io", T + 48 * HOUR, T)
    owners = []
    for n in range(4):
        mql = qualify(session, east_lead(session, f"l{n}@corp.com"), RULES)
        assert mql is not None
        owners.append(mql.owner)
    set_away(session, routing(), "wang.fang@t.io", None, T + HOUR)
    for n in range(6):
        mql = qualify(session, east_lead(session, f"m{n}@corp.com"), RULES, T + 2 * HOUR)
        assert mql is not None
        owners.append(mql.owner)

    assert owners[:4] == ["li.na@t.io"] * 4
    assert Counter(owners[4:]) == {"li.na@t.io": 2, "wang.fang@t.io": 4}


def test_an_unknown_member_cannot_be_set_away(session: Session) -> None:
    with pytest.raises(AnswerError, match=r"no sales member 'who@t\.io'; members: amy@t\.io"):
        set_away(session, routing(), "who@t.io", T + HOUR, T)
    with pytest.raises(AnswerError, match="not in the future"):
        set_away(session, routing(), "amy@t.io", T - HOUR, T)


def test_an_mql_that_finds_nobody_waits_and_the_clock_retries_the_rules(session: Session) -> None:
    rules = Rules(MODEL, routing(sla={"seconds": 3600, "action": "reassign"}))
    for member in ("li.na@t.io", "wang.fang@t.io"):
        set_away(session, rules.routing, member, T + 90 * MINUTE, T)
    lead = east_lead(session, "ada@corp.com")
    lead.attributes = {**lead.attributes, "employees": 800}
    rules = Rules(MODEL, {**rules.routing, "rules": rules.routing["rules"][2:3]})  # east only

    mql = qualify(session, lead, rules)
    assert mql is not None and mql.owner is None
    assert sweep(session, T + 2 * HOUR, rules) == [mql.id]

    assert mql.owner == "wang.fang@t.io"
    count = session.scalar(select(func.count()).select_from(Assignment))
    assert count == 2


def test_a_returned_lead_enters_the_campaigns_that_enroll_when_returned(
    session: Session, tmp_path: Path
) -> None:
    source = 'campaign "Win back"\n  enroll when returned\n  reenter after 30 days\n  wait 1 day\n'
    deploy_sources(db.session_factory(session.get_bind()), {str(tmp_path / "w.nurture"): source}, T)
    lead = east_lead(session, "ada@corp.com")
    assert qualify(session, lead, RULES) is not None

    done = give_back(session, lead, "wang.fang@t.io", "not now", T + HOUR)

    assert done.said.endswith("; it entered a campaign that enrolls when returned")
    [enrolled] = session.scalars(select(Enrollment).where(Enrollment.lead_id == lead.id))
    assert (enrolled.state, enrolled.entered_at) == ("active", T + HOUR)


def test_else_escalate_gives_an_unaccepted_mql_to_the_escalation_user(session: Session) -> None:
    sla_line = {"seconds": 86400, "action": "escalate", "escalate_to": "boss@t.io"}
    rules = Rules(MODEL, routing(sla=sla_line))
    lead = east_lead(session, "ada@corp.com")
    mql = qualify(session, lead, rules)
    assert mql is not None and mql.owner == "wang.fang@t.io"

    assert sweep(session, T + 25 * HOUR, rules) == [mql.id]

    assert (lead.owner, mql.escalated_at) == ("boss@t.io", T + 25 * HOUR)
    last = assignments(session, lead.id)[-1]
    assert (last.how, last.previous, last.reason) == (
        "escalation",
        "wang.fang@t.io",
        "the SLA escalates; escalated to boss@t.io",
    )
