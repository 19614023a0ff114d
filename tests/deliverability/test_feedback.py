"""Recording feedback on a migrated database (SQLite and PostgreSQL): what each kind does to
the lead, per channel, and that a replay records nothing twice."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nurture import db
from nurture.deliverability.feedback import BouncePolicy, Feedback, FeedbackError, record
from nurture.models import Event, FeedbackReceipt, Lead
from nurture.store.suppressions import closed_channels
from nurture.store.views import engine_events
from tests.deliverability.conftest import make_delivery

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def events(session: Session, lead_id: int) -> list[tuple[str, int | None]]:
    rows = session.execute(
        select(Event.type, Event.delivery_id).where(Event.lead_id == lead_id).order_by(Event.id)
    )
    return [(t, d) for t, d in rows]


def bounce(delivery_id: int, key: str, hard: bool | None, at: datetime = T) -> Feedback:
    return Feedback(delivery_id, "bounced", at, "dsn", key, hard=hard, detail="5.1.1")


def test_a_hard_bounce_closes_email_for_the_lead_but_not_sms(session: Session) -> None:
    delivery = make_delivery(session)
    assert record(session, bounce(delivery.id, "<dsn-1@mx>", True))

    lead = session.get(Lead, delivery.lead_id)
    assert lead is not None and not lead.suppressed
    assert closed_channels(session, [lead]) == {
        lead.id: {"email": f"bounced_hard at {T.isoformat()}"}
    }
    assert events(session, lead.id) == [("bounced_hard", delivery.id)]
    seen = engine_events(session, lead.id, until=T)
    assert [e.name for e in seen] == ["bounced_hard"]


def test_a_replay_records_nothing_twice(session: Session) -> None:
    delivery = make_delivery(session)
    first = Feedback(delivery.id, "opened", T, "sendgrid", "evt-1")
    assert record(session, first)
    assert not record(session, first)
    assert not record(session, Feedback(delivery.id, "clicked", T, "sendgrid", "evt-1"))
    # the same key from another source is another event
    assert record(session, Feedback(delivery.id, "opened", T, "postmark", "evt-1"))
    session.commit()
    assert events(session, delivery.lead_id) == [("opened", delivery.id)] * 2
    count = session.scalar(select(func.count()).select_from(FeedbackReceipt))
    assert count == 2


def test_soft_bounces_count_and_the_nth_within_the_window_is_hard(session: Session) -> None:
    # Given four messages to one address (a delivery each)
    first = make_delivery(session)
    old, a, b, c = [first] + [make_delivery(session, step=f"s{i}") for i in range(3)]
    policy = BouncePolicy(soft_limit=3, window=timedelta(days=7))
    lead = session.get(Lead, first.lead_id)
    assert lead is not None

    # a soft bounce long ago falls out of the window
    record(session, bounce(old.id, "old", False, T - timedelta(days=30)), policy)
    record(session, bounce(a.id, "a", False, T), policy)
    record(session, bounce(b.id, "b", False, T + timedelta(days=1)), policy)
    assert closed_channels(session, [lead]) == {}
    assert record(session, bounce(c.id, "c", False, T + timedelta(days=2)), policy)

    assert [t for t, _ in events(session, lead.id)] == [
        "bounced_soft",
        "bounced_soft",
        "bounced_soft",
        "bounced_hard",
    ]
    assert set(closed_channels(session, [lead])[lead.id]) == {"email"}
    last = session.scalars(select(Event).order_by(Event.id.desc())).first()
    assert last is not None and last.data["soft_bounces"] == 3


def test_reports_about_one_message_are_one_soft_bounce(session: Session) -> None:
    # Given one message that three reports say soft-bounced (relays, retries, ISPs' own DSNs)
    delivery = make_delivery(session)
    policy = BouncePolicy(soft_limit=2)
    for hour in range(3):
        at = T + timedelta(hours=hour)
        assert record(session, bounce(delivery.id, f"r{hour}", False, at), policy)

    # Then the address has one soft bounce: still open
    lead = session.get(Lead, delivery.lead_id)
    assert lead is not None
    assert [t for t, _ in events(session, lead.id)] == ["bounced_soft"] * 3
    assert closed_channels(session, [lead]) == {}


@pytest.mark.parametrize(
    ("apart", "last"),
    [
        (timedelta(days=7), "bounced_hard"),  # exactly the window: within it
        (timedelta(days=7, seconds=1), "bounced_soft"),  # a second more: outside
    ],
)
def test_the_window_includes_both_its_ends(session: Session, apart: timedelta, last: str) -> None:
    first, second = make_delivery(session), make_delivery(session, step="two")
    policy = BouncePolicy(soft_limit=2, window=timedelta(days=7))
    record(session, bounce(first.id, "a", False, T), policy)
    record(session, bounce(second.id, "b", False, T + apart), policy)
    assert [t for t, _ in events(session, first.lead_id)] == ["bounced_soft", last]


def test_soft_bounces_reported_out_of_order_still_add_up(session: Session) -> None:
    # Given three messages that soft-bounced on days 0, 1 and 2, reported days 2, 0, then 1
    # (a webhook retried late): the last report completes three within the window
    a, b, c = (make_delivery(session, step=f"s{i}") for i in range(3))
    policy = BouncePolicy(soft_limit=3, window=timedelta(days=7))
    record(session, bounce(c.id, "c", False, T + timedelta(days=2)), policy)
    record(session, bounce(a.id, "a", False, T), policy)
    record(session, bounce(b.id, "b", False, T + timedelta(days=1)), policy)

    kinds = [t for t, _ in events(session, a.lead_id)]
    assert kinds == ["bounced_soft", "bounced_soft", "bounced_hard"]
    lead = session.get(Lead, a.lead_id)
    assert lead is not None and set(closed_channels(session, [lead])[lead.id]) == {"email"}


def test_soft_bounces_are_counted_per_address(session: Session) -> None:
    ada, bo = make_delivery(session), make_delivery(session, "bo@corp.com", phone=None)
    policy = BouncePolicy(soft_limit=2)
    record(session, bounce(ada.id, "a", False), policy)
    record(session, bounce(bo.id, "b", False), policy)
    assert [t for t, _ in events(session, ada.lead_id)] == ["bounced_soft"]
    assert [t for t, _ in events(session, bo.lead_id)] == ["bounced_soft"]


def test_a_complaint_stops_everything(session: Session) -> None:
    delivery = make_delivery(session)
    record(session, Feedback(delivery.id, "complained", T, "arf", "<arf-1@isp>"))
    lead = session.get(Lead, delivery.lead_id)
    assert lead is not None and lead.suppressed and lead.complained_at == T


def test_an_unsubscribe_closes_the_delivery_channel(session: Session) -> None:
    delivery = make_delivery(session, channel="sms")
    record(session, Feedback(delivery.id, "unsubscribed", T, "twilio", "u-1"))
    lead = session.get(Lead, delivery.lead_id)
    assert lead is not None and not lead.suppressed
    assert set(closed_channels(session, [lead])[lead.id]) == {"sms"}


def test_delivered_opened_and_clicked_are_the_lead_events(session: Session) -> None:
    delivery = make_delivery(session)
    url = "https://corp.example/pricing"
    record(session, Feedback(delivery.id, "delivered", T, "ses", "d"))
    record(session, Feedback(delivery.id, "opened", T, "ses", "o"))
    record(session, Feedback(delivery.id, "clicked", T, "ses", "c", url=url))
    assert [t for t, _ in events(session, delivery.lead_id)] == ["delivered", "opened", "clicked"]
    click = session.scalars(select(Event).where(Event.type == "clicked")).one()
    assert click.link == url and click.data["url"] == url


def test_unknown_delivery_or_kind_is_refused_and_nothing_is_written(session: Session) -> None:
    delivery = make_delivery(session)
    with pytest.raises(FeedbackError, match="no delivery 999"):
        record(session, Feedback(999, "bounced", T, "dsn", "x", hard=True))
    with pytest.raises(FeedbackError, match="unknown feedback kind 'spam'"):
        record(session, Feedback(delivery.id, "spam", T, "dsn", "y"))
    assert session.scalar(select(func.count()).select_from(FeedbackReceipt)) == 0
    assert events(session, delivery.lead_id) == []


def test_feedback_on_an_unknown_delivery_confirms_it_was_sent(session: Session) -> None:
    # Given a touch whose job died mid-send: nobody knows whether it went out
    delivery = make_delivery(session)
    delivery.status, delivery.sent_at = "unknown", None
    session.flush()

    # When its DSN comes back
    woken: list[int] = []
    record(session, bounce(delivery.id, "<dsn@mx>", True), woken=woken)

    # Then it did go out: sent, saying who said so, and its enrollment moves on
    assert delivery.status == "sent" and delivery.sent_at == T
    assert "confirmed delivered by dsn feedback (bounced)" in (delivery.error or "")
    assert woken == [delivery.enrollment_id]


def test_two_transactions_recording_one_feedback_at_once_record_it_once(
    pg_url: str,
) -> None:
    # Given two sessions on PostgreSQL, the first having recorded an open but not committed
    db.upgrade(pg_url)
    engine = db.make_engine(pg_url)
    sessions = db.session_factory(engine)
    try:
        with sessions() as setup, setup.begin():
            delivery_id = make_delivery(setup).id
        feedback = Feedback(delivery_id, "opened", T, "sendgrid", "evt-race")
        first = sessions()
        first.begin()
        assert record(first, feedback)

        # When the second records the same feedback (it waits on the first's unique key)
        with ThreadPoolExecutor(1) as pool:
            second = pool.submit(_record_in_own_transaction, sessions, feedback)
            time.sleep(0.5)
            assert not second.done()  # really waiting on the first transaction
            first.commit()
            first.close()

            # Then it finds it recorded: False, and nothing twice
            assert second.result(timeout=10) is False
        with sessions() as check:
            assert check.scalar(select(func.count()).select_from(FeedbackReceipt)) == 1
            assert check.scalar(select(func.count()).select_from(Event)) == 1
    finally:
        engine.dispose()


def _record_in_own_transaction(sessions: sessionmaker[Session], feedback: Feedback) -> bool:
    with sessions() as session, session.begin():
        return record(session, feedback)
