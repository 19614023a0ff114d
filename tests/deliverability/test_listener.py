"""``nurture bounces``' SMTP side: real DSNs and ARF reports sent over SMTP (aiosmtplib) to the
real aiosmtpd listener, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import aiosmtplib
import pytest
from sqlalchemy import Engine, func, select

from nurture import db
from nurture.deliverability.inbound import BounceHandler
from nurture.deliverability.verp import Verp
from nurture.models import Event, FeedbackReceipt, Lead
from nurture.store.suppressions import closed_channels
from tests.deliverability.conftest import Listener, make_delivery
from tests.deliverability.messages import arf, auto_reply, dsn, malformed


def delivery_of(engine: Engine, email: str = "ada@corp.com") -> tuple[int, int, str]:
    """A delivery to `email`: its id, its lead's id, its Message-ID (committed)."""
    with db.session_factory(engine)() as session, session.begin():
        phone = "+8613912345678" if email == "ada@corp.com" else None
        delivery = make_delivery(session, email, phone=phone)
        return delivery.id, delivery.lead_id, delivery.message_id


def event_types(engine: Engine) -> list[str]:
    with db.session_factory(engine)() as session:
        return list(session.scalars(select(Event.type).order_by(Event.id)))


def closed(engine: Engine, lead_id: int) -> dict[str, str]:
    with db.session_factory(engine)() as session:
        lead = session.get(Lead, lead_id)
        return closed_channels(session, [lead]).get(lead_id, {})


def receipts(engine: Engine) -> int:
    with db.session_factory(engine)() as session:
        return int(session.scalar(select(func.count()).select_from(FeedbackReceipt)) or 0)


def test_a_hard_dsn_to_the_return_path_closes_email_once_even_replayed(
    listener: Listener, engine: Engine, verp: Verp
) -> None:
    delivery, lead, _ = delivery_of(engine)
    to = verp.address(delivery)

    reply = listener.send(dsn(to), to)
    assert f"recorded bounced for delivery {delivery}" in reply
    assert listener.send(dsn(to), to).endswith("already recorded")

    assert event_types(engine) == ["bounced_hard"]
    assert set(closed(engine, lead)) == {"email"}
    assert receipts(engine) == 1


def test_three_soft_bounces_within_the_window_become_hard(
    listener: Listener, engine: Engine, verp: Verp, now: list
) -> None:
    # Given three messages to one address, each soft-bouncing a day after the last
    deliveries = [delivery_of(engine)[0] for _ in range(3)]
    lead = delivery_of(engine)[1]
    for day, delivery in enumerate(deliveries):
        now[0] += timedelta(days=day and 1)
        assert closed(engine, lead) == {}
        to = verp.address(delivery)
        listener.send(dsn(to, status="4.2.2", report_id=f"<soft-{day}@mx>"), to)
    assert event_types(engine) == ["bounced_soft", "bounced_soft", "bounced_hard"]
    assert set(closed(engine, lead)) == {"email"}


def test_soft_bounces_further_apart_than_the_window_stay_soft(
    listener: Listener, engine: Engine, verp: Verp, now: list
) -> None:
    deliveries = [delivery_of(engine)[0] for _ in range(3)]
    lead = delivery_of(engine)[1]
    for day, delivery in enumerate(deliveries):
        now[0] += timedelta(days=4)
        to = verp.address(delivery)
        listener.send(dsn(to, status="4.2.2", report_id=f"<d{day}@mx>"), to)
    assert event_types(engine) == ["bounced_soft"] * 3
    assert closed(engine, lead) == {}


def test_daily_delay_warnings_are_accepted_and_never_become_a_bounce(
    listener: Listener, engine: Engine, verp: Verp, now: list
) -> None:
    # Given a slow receiving server: the sender warns each day (as Exim does) that it still tries
    delivery, lead, _ = delivery_of(engine)
    to = verp.address(delivery)
    for day in range(4):
        now[0] += timedelta(days=1)
        warning = dsn(to, action="delayed", status="4.4.7", report_id=f"<warn-{day}@mx>")
        assert "ignored: a delay warning" in listener.send(warning, to)
    # Then nothing is counted and email stays open
    assert event_types(engine) == [] and receipts(engine) == 0
    assert closed(engine, lead) == {}


def test_an_auto_reply_to_the_return_path_is_accepted_and_ignored(
    listener: Listener, engine: Engine, verp: Verp
) -> None:
    delivery, lead, _ = delivery_of(engine)
    to = verp.address(delivery)
    reply = listener.send(auto_reply(to), to, sender="ada@corp.com")
    assert "ignored: an auto-reply (Auto-Submitted: auto-replied)" in reply
    assert event_types(engine) == [] and receipts(engine) == 0 and closed(engine, lead) == {}


def test_a_forged_return_path_is_refused_and_nothing_recorded(
    listener: Listener, engine: Engine, verp: Verp
) -> None:
    delivery, _, _ = delivery_of(engine)
    forged = verp.address(delivery).replace(f"+{delivery}.", f"+{delivery + 1}.")
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        listener.send(dsn(forged), forged)
    [answer] = refused.value.recipients
    assert answer.code == 550
    assert f"signature that does not match delivery {delivery + 1}" in answer.message
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as relayed:
        listener.send(dsn("ada@corp.com"), "ada@corp.com")
    assert "this server relays nothing" in relayed.value.recipients[0].message
    assert event_types(engine) == [] and receipts(engine) == 0


def test_a_genuine_return_path_of_a_deleted_delivery_is_refused_at_data(
    listener: Listener, engine: Engine, verp: Verp
) -> None:
    to = verp.address(999)
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        listener.send(dsn(to), to)
    assert refused.value.code == 550 and "no delivery 999" in refused.value.message
    assert receipts(engine) == 0


def test_a_malformed_report_is_refused_with_the_reason(
    listener: Listener, engine: Engine, verp: Verp
) -> None:
    delivery, _, _ = delivery_of(engine)
    to = verp.address(delivery)
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        listener.send(malformed(to), to)
    assert refused.value.code == 550
    assert "malformed report: a delivery-status report with no message/delivery-status part" in (
        refused.value.message
    )
    with pytest.raises(aiosmtplib.SMTPDataError, match="Status 'oops' is not a status code"):
        listener.send(dsn(to, status="oops"), to)
    assert event_types(engine) == [] and receipts(engine) == 0


def test_an_arf_complaint_to_the_feedback_loop_address_maps_by_message_id(
    listener: Listener, engine: Engine
) -> None:
    delivery, lead, message_id = delivery_of(engine)
    _, other, _ = delivery_of(engine, "bo@corp.com")
    reply = listener.send(
        arf("fbl@bounces.acme.test", message_id=message_id), "fbl@bounces.acme.test"
    )
    assert f"recorded complained for delivery {delivery}" in reply
    with db.session_factory(engine)() as session:
        ada, bo = session.get(Lead, lead), session.get(Lead, other)
        assert ada is not None and ada.complained_at is not None and ada.suppressed
        assert bo is not None and not bo.suppressed
    # a report about a message that is not ours records nothing
    with pytest.raises(aiosmtplib.SMTPDataError, match="names no delivery of ours"):
        listener.send(
            arf("fbl@bounces.acme.test", message_id="<x@elsewhere>", report_id="<2@f>"),
            "fbl@bounces.acme.test",
        )
    assert receipts(engine) == 1


def test_a_dsn_to_the_postmaster_maps_by_the_original_message_id(
    listener: Listener, engine: Engine
) -> None:
    _, lead, message_id = delivery_of(engine)
    listener.send(
        dsn("postmaster@bounces.acme.test", message_id=message_id), "postmaster@bounces.acme.test"
    )
    assert event_types(engine) == ["bounced_hard"]
    assert set(closed(engine, lead)) == {"email"}


def test_a_database_that_cannot_record_answers_try_again_later(
    sqlite_url: str, verp: Verp, now: list
) -> None:
    # Given a listener on a database that has no tables (never upgraded)
    engine = db.make_engine(sqlite_url)
    listener = Listener(BounceHandler(db.session_factory(engine), verp, clock=lambda: now[0]))
    listener.start()
    to = verp.address(1)
    try:
        # When a DSN comes, Then the sender is told to try again (4xx), not that it was wrong
        with pytest.raises(aiosmtplib.SMTPDataError) as later:
            listener.send(dsn(to), to)
    finally:
        listener.stop()
        engine.dispose()
    assert later.value.code == 451 and "try again later" in later.value.message


def test_an_arf_report_quoting_the_return_path_maps_by_it(
    listener: Listener, engine: Engine, verp: Verp
) -> None:
    # A feedback loop that rewrote the Message-ID still quotes the signed return path
    delivery, lead, _ = delivery_of(engine)
    fbl = "fbl@bounces.acme.test"
    report = arf(fbl, message_id="<rewritten@isp>", return_path=verp.address(delivery))
    assert f"recorded complained for delivery {delivery}" in listener.send(report, fbl)
    with db.session_factory(engine)() as session:
        ada = session.get(Lead, lead)
        assert ada is not None and ada.complained_at is not None
    # and a forged one there maps to nothing
    forged = verp.address(delivery).replace(f"+{delivery}.", f"+{delivery + 1}.")
    fake = arf(fbl, message_id="<other@isp>", return_path=forged, report_id="<arf-2@isp>")
    with pytest.raises(aiosmtplib.SMTPDataError, match="names no delivery of ours"):
        listener.send(fake, fbl)
    assert receipts(engine) == 1


def test_a_dsn_with_message_ids_the_email_package_cannot_parse_still_counts(
    listener: Listener, engine: Engine, verp: Verp
) -> None:
    # Given a DSN from a careless server: its own and the original's Message-ID are cut short
    # (Python's header parser raises IndexError on them rather than noting a defect)
    delivery, lead, _ = delivery_of(engine)
    to = verp.address(delivery)
    report = dsn(to, report_id="<dsn-cut@", message_id="<.@")

    # When it arrives, Then the bounce is recorded like any other, and a replay is not
    assert f"recorded bounced for delivery {delivery}" in listener.send(report, to)
    assert listener.send(report, to).endswith("already recorded")
    assert event_types(engine) == ["bounced_hard"]
    assert set(closed(engine, lead)) == {"email"}


def test_a_dsn_with_a_nul_in_its_diagnostic_still_counts(
    listener: Listener, engine: Engine, verp: Verp
) -> None:
    # Given a DSN whose diagnostic carries a NUL byte (PostgreSQL refuses it in text)
    delivery, lead, _ = delivery_of(engine)
    to = verp.address(delivery)
    report = dsn(to, diagnostic="smtp; 550 5.1.1 user\x00unknown")

    # When it arrives, Then the bounce is recorded, not put off with a 451 for ever
    assert f"recorded bounced for delivery {delivery}" in listener.send(report, to)
    assert event_types(engine) == ["bounced_hard"]
    assert set(closed(engine, lead)) == {"email"}
