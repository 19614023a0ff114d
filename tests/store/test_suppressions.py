"""Suppression per channel and per address, in the store: what closes a channel, what still
stops everything, and which lead a closed address applies to."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from nurture import db
from nurture.models import Lead, Suppression
from nurture.store.scoring import record_event
from nurture.store.suppressions import address_hash, closed_channels, stops, suppress

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def lead(session: Session, **fields: object) -> Lead:
    values: dict[str, object] = {
        "email": "ada@corp.com",
        "phone": "+8613912345678",
        "messaging_id": "o-ada",
    }
    values.update(fields)
    row = Lead(**values)
    session.add(row)
    session.flush()
    return row


def test_an_event_naming_a_channel_closes_that_channel_only(session: Session) -> None:
    ada = lead(session)
    record_event(session, ada.id, "bounced_hard", None, T, data={"channel": "wechat"})
    record_event(session, ada.id, "unsubscribed", None, T, data={"channel": "sms"})

    assert not ada.suppressed and ada.hard_bounced_at is None and ada.unsubscribed_at is None
    assert closed_channels(session, [ada]) == {
        ada.id: {
            "wechat": f"bounced_hard at {T.isoformat()}",
            "sms": f"unsubscribed at {T.isoformat()}",
        }
    }


def test_without_a_channel_or_with_all_an_unsubscribe_still_stops_everything(
    session: Session,
) -> None:
    # today's meaning is kept: an event without a channel (or "all") suppresses the lead
    ada, bo = lead(session), lead(session, email="bo@corp.com", phone=None, messaging_id=None)
    record_event(session, ada.id, "unsubscribed", None, T)
    record_event(session, bo.id, "unsubscribed", None, T, data={"channel": "all"})
    assert ada.suppressed and bo.suppressed
    assert session.scalar(select(func.count()).select_from(Suppression)) == 0


def test_a_complaint_stops_everything_even_naming_a_channel(session: Session) -> None:
    ada = lead(session)
    record_event(session, ada.id, "complained", None, T, data={"channel": "email"})
    assert ada.suppressed and ada.complained_at == T


def test_a_closed_address_applies_to_whoever_has_it_now(session: Session) -> None:
    # Given SMS closed for a number, and email closed for an address written in capitals
    assert suppress(session, "sms", "+8613912345678", "STOP", T)
    assert suppress(session, "email", "  Ada@Corp.com ", "bounced", T)
    assert not suppress(session, "sms", "+8613912345678", "again", T)  # the first reason stays
    ada = lead(session)
    bo = lead(session, email="bo@corp.com", phone="+8613912345600", messaging_id=None)

    # Then Ada's SMS and email are closed (by address, whoever she is), Bo's nothing
    assert closed_channels(session, [ada, bo]) == {ada.id: {"sms": "STOP", "email": "bounced"}}

    # And once Ada's number changes, SMS to the new one goes again
    ada.phone = "+8613912345699"
    assert closed_channels(session, [ada]) == {ada.id: {"email": "bounced"}}


def test_all_on_an_address_closes_every_channel(session: Session) -> None:
    suppress(session, "all", "ada@corp.com", "forgotten", T)
    ada = lead(session)
    assert closed_channels(session, [ada]) == {
        ada.id: {"email": "forgotten", "sms": "forgotten", "wechat": "forgotten"}
    }


def test_addresses_are_kept_hashed(session: Session) -> None:
    suppress(session, "wechat", "o-ada", "43004", T)
    [row] = session.scalars(select(Suppression))
    assert row.address_hash == address_hash("wechat", "o-ada") and "o-ada" not in row.address_hash
    assert len(row.address_hash) == 64


def test_stop_replies() -> None:
    for words in ("STOP", "td", " TD ", "退订", "Unsubscribe.", "stop!"):
        assert stops(words), words
    for words in ("stop by tomorrow?", "hello", "TDX", ""):
        assert not stops(words), words


def test_0011_keeps_what_a_lead_suppressed_before_it_means(db_url: str) -> None:
    # Given a database at 0010 with a hard-bounced lead (today: suppressed on every channel)
    config = db.alembic_config(db_url)
    command.upgrade(config, "0010")
    engine = create_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO leads (email, phone, attributes, hard_bounced_at, "
                    "suppressed_reason, created_at, updated_at) "
                    "VALUES ('ada@corp.com', '+8613912345678', '{}', :at, 'wechat 43004', :at, :at)"
                ),
                {"at": T},
            )

        # When it is upgraded to 0011
        command.upgrade(config, "head")

        # Then the lead still receives nothing, on every channel, and nothing was split up
        with db.session_factory(engine)() as session:
            ada = session.scalars(select(Lead)).one()
            assert ada.suppressed and ada.suppressed_reason == "wechat 43004"
            assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    finally:
        engine.dispose()
