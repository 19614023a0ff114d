"""Stage transitions with causes, one owner at a time, and leads returned to nurture."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.models import Lead, MqlRecord
from nurture.store import (
    LifecycleError,
    Rules,
    history,
    mark_mql,
    record_event,
    return_to_nurture,
    transition,
)
from tests.store.test_scoring_store import MODEL, good_fit

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
RULES = Rules(MODEL, {"sla": {"seconds": 86400, "action": "reassign"}})


def webinars(session: Session, lead: Lead, count: int, at: datetime) -> MqlRecord | None:
    """Record `count` webinars at `at`; the MQL the last one made, if any."""
    mql = None
    for _ in range(count):
        mql = record_event(session, lead.id, "custom", "webinar_attended", at, rules=RULES).mql
    return mql


def test_a_forward_transition_is_recorded_with_its_cause_and_owner(session: Session) -> None:
    lead = good_fit(session)
    mark_mql(session, lead, "demo request form", "mql statement", None, T, None)

    done = transition(session, lead, "sql", "accepted by zhang.wei", T + HOUR, owner="zhang.wei")

    assert done is not None
    assert (done.from_stage, done.to_stage, done.cause) == ("mql", "sql", "accepted by zhang.wei")
    assert (lead.stage, lead.owner) == ("sql", "zhang.wei")
    session.commit()
    session.expire_all()
    stored = session.scalars(select(Lead).where(Lead.id == lead.id)).one()
    assert (stored.stage, stored.owner) == ("sql", "zhang.wei")


def test_skipping_ahead_is_allowed_and_repeating_is_a_no_op(session: Session) -> None:
    lead = good_fit(session)

    assert transition(session, lead, "customer", "contract signed offline", T) is not None
    assert transition(session, lead, "customer", "contract signed offline", T) is None

    assert [(t.from_stage, t.to_stage) for t in history(session, lead.id)] == [("lead", "customer")]


@pytest.mark.parametrize(
    ("start", "to", "message"),
    [
        ("customer", "sql", "cannot go from customer to sql"),
        ("sql", "lead", "cannot go from sql to lead"),
        ("lead", "mql", "through mark_mql"),
        ("lead", "won", "unknown stage"),
        ("lead", "returned", "cannot go from lead to returned"),
    ],
)
def test_disallowed_transitions_are_refused(
    session: Session, start: str, to: str, message: str
) -> None:
    lead = good_fit(session)
    lead.stage = start
    session.flush()

    with pytest.raises(LifecycleError, match=message):
        transition(session, lead, to, "because", T)

    assert lead.stage == start
    assert history(session, lead.id) == []


def test_mark_mql_never_demotes_a_lead_further_down_the_funnel(session: Session) -> None:
    lead = good_fit(session)
    transition(session, lead, "opportunity", "deal opened", T)

    assert mark_mql(session, lead, "mql statement", "mql statement", None, T, None) is None

    assert lead.stage == "opportunity"
    assert [t.to_stage for t in history(session, lead.id)] == ["opportunity"]


def test_a_returned_lead_has_a_complete_history_and_can_qualify_again(
    session: Session,
) -> None:
    # Given a lead that became MQL on webinars and was accepted by sales
    lead = good_fit(session)
    first = webinars(session, lead, 3, T)
    assert first is not None
    transition(session, lead, "sql", "accepted by zhang.wei", T + HOUR, owner="zhang.wei")

    # When sales returns it with a reason
    returned = return_to_nurture(session, lead, "no budget until next year", T + 2 * HOUR)

    # Then it is back in nurture, with no owner, and the MQL's SLA clock has stopped
    assert returned is not None
    assert returned.cause == "returned by zhang.wei: no budget until next year"
    assert (lead.stage, lead.owner) == ("returned", None)
    session.refresh(first)
    assert (first.returned_at, first.return_reason) == (T + 2 * HOUR, "no budget until next year")
    assert return_to_nurture(session, lead, "again", T + 3 * HOUR) is None

    # And the old webinars no longer count: interest starts again from the return
    record = record_event(session, lead.id, "opened", None, T + 3 * HOUR, rules=RULES)
    assert record.scores.interest == 1
    assert record.mql is None

    # And new behaviour makes it an MQL again, recorded as a second episode
    second = webinars(session, lead, 3, T + 4 * HOUR)
    assert second is not None and second.interest == 61
    assert second.sla_due_at == T + 28 * HOUR
    session.commit()

    # And the history tells the whole story, each step with its cause
    assert [(t.from_stage, t.to_stage, t.at) for t in history(session, lead.id)] == [
        ("lead", "mql", T),
        ("mql", "sql", T + HOUR),
        ("sql", "returned", T + 2 * HOUR),
        ("returned", "mql", T + 4 * HOUR),
    ]
    causes = [t.cause for t in history(session, lead.id)]
    assert causes[0].startswith('MQL rule of scoring "Test model" held after event')
    assert causes[1:3] == [
        "accepted by zhang.wei",
        "returned by zhang.wei: no budget until next year",
    ]
    assert causes[3].startswith('MQL rule of scoring "Test model" held after event')
    records = session.scalars(
        select(MqlRecord).where(MqlRecord.lead_id == lead.id).order_by(MqlRecord.id)
    ).all()
    assert [r.returned_at for r in records] == [T + 2 * HOUR, None]


@pytest.mark.parametrize(("stage", "reason"), [("lead", "not ready"), ("mql", "  ")])
def test_returning_needs_a_lead_sales_holds_and_a_reason(
    session: Session, stage: str, reason: str
) -> None:
    lead = good_fit(session)
    if stage == "mql":
        mark_mql(session, lead, "form", "mql statement", None, T, None)

    with pytest.raises(LifecycleError):
        return_to_nurture(session, lead, reason, T + HOUR, by="li.na")

    assert lead.stage == stage
