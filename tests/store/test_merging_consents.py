"""Merging leads keeps consent (the newer answer per channel) and the address suppressions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.models import Consent, Lead, Suppression
from nurture.store.consents import closed_for_consent, record_consents
from nurture.store.merging import merge_leads
from nurture.store.suppressions import closed_channels, suppress

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_consents_move_to_the_survivor_the_newer_answer_per_channel_winning(
    session: Session,
) -> None:
    # Given Ada, who gave email consent on a form and withdrew SMS later, and her old record,
    # which gave SMS consent earlier, WeChat consent, and an older refusal of email
    ada = Lead(email="ada@corp.com", attributes={})
    old = Lead(phone="+8615061827305", messaging_id="o-ada", attributes={})
    session.add_all([ada, old])
    session.flush()
    record_consents(session, ada.id, {"email": True}, "webinar form", T + timedelta(days=2))
    record_consents(session, ada.id, {"sms": False}, "api", T + timedelta(days=3))
    record_consents(session, old.id, {"sms": True, "wechat": True}, "import", T)
    record_consents(session, old.id, {"email": False}, "import", T + timedelta(days=1))
    old_id = old.id

    # When the old record is merged into her
    merge_leads(session, ada, old, T + timedelta(days=4), "same person")
    session.flush()

    # Then she has one answer per channel, each the newer one, with its source and time
    rows = session.scalars(select(Consent).order_by(Consent.channel)).all()
    assert [(c.lead_id, c.channel, c.granted, c.source, c.at) for c in rows] == [
        (ada.id, "email", True, "webinar form", T + timedelta(days=2)),
        (ada.id, "sms", False, "api", T + timedelta(days=3)),
        (ada.id, "wechat", True, "import", T),
    ]
    assert session.scalars(select(Consent).where(Consent.lead_id == old_id)).all() == []
    # And with consent required, the withdrawn SMS stays closed, the WeChat consent counts
    closed = closed_for_consent(session, [ada.id], ["email", "sms", "wechat"])
    assert set(closed[ada.id]) == {"sms"}


def test_address_suppressions_still_hold_for_the_survivor(session: Session) -> None:
    # Given an old record whose number replied TD (SMS closed) and a survivor without a number
    ada = Lead(email="ada@corp.com", attributes={})
    old = Lead(phone="+8615061827305", attributes={})
    session.add_all([ada, old])
    session.flush()
    suppress(session, "sms", "+8615061827305", "sms reply TD", T, old.id)

    # When it is merged into her
    merge_leads(session, ada, old, T, "same person")
    session.flush()

    # Then she has the number, SMS stays closed for it, email open; the row names her now
    assert ada.phone == "+8615061827305"
    assert closed_channels(session, [ada]) == {ada.id: {"sms": "sms reply TD"}}
    [row] = session.scalars(select(Suppression)).all()
    assert row.lead_id == ada.id
