"""Suppression per channel on the real path: a WeChat 43004 from a provider under uvicorn
closes WeChat for that lead and nothing else, and the campaign goes on to its next step;
a closed SMS number withholds SMS while email and WeChat go out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nurture.config import Settings
from nurture.engine.clock import VirtualClock
from nurture.models import Event, Lead, Suppression
from nurture.store.consents import record_consents
from nurture.store.suppressions import address_hash, suppress
from tests.channels.provider import TOKEN, Provider, provider_app
from tests.live import serving
from tests.runtime.conftest import MONDAY, add_lead
from tests.runtime.helpers import deliveries, enrollments
from tests.runtime.test_embedded_providers import deploy, run

WECHAT_THEN_EMAIL = """\
campaign "Both"
  enroll when lead created
  send wechat "t/w"
  wait 1 day
  send email "t/e"
  send wechat "t/w"
  send sms "t/s"
"""


@pytest.fixture
def provider() -> Iterator[Provider]:
    """The fake SMS and WeChat provider under uvicorn (43004 for ``o-unfollowed``)."""
    provider = Provider()
    with serving(provider_app(provider), "provider") as url:
        provider.reset(url)
        yield provider


def configured(settings: Settings, provider: Provider) -> Settings:
    return settings.with_changes(
        sms_url=f"{provider.base_url}/sms",
        sms_token=TOKEN,
        wechat_url=f"{provider.base_url}/wechat?access_token={TOKEN}",
    )


def test_a_wechat_43004_closes_wechat_only_and_the_campaign_goes_on(
    settings: Settings,
    sessions: sessionmaker[Session],
    clock: VirtualClock,
    tmp_path: Path,
    provider: Provider,
) -> None:
    # Given a lead who unfollowed the WeChat account, and one who follows it
    deploy(sessions, tmp_path / "c", clock, WECHAT_THEN_EMAIL)
    gone = add_lead(sessions, "gone@client.example", messaging_id="o-unfollowed")
    kept = add_lead(sessions, "kept@client.example", phone="+8613912345679", messaging_id="o-1")
    settings = configured(settings, provider)

    # When the first WeChat touch goes out, and a day later the rest
    run(settings, clock)
    clock.advance(timedelta(days=1, minutes=1))
    run(settings, clock)

    # Then WeChat is closed for the unfollowed openid alone, with the provider's answer
    with sessions() as session:
        [closed] = session.scalars(select(Suppression)).all()
        assert (closed.channel, closed.lead_id) == ("wechat", gone)
        assert closed.address_hash == address_hash("wechat", "o-unfollowed")
        assert "43004" in closed.reason
        lead = session.get(Lead, gone)
        assert lead is not None and not lead.suppressed and lead.hard_bounced_at is None
        [bounce] = session.scalars(select(Event).where(Event.type == "bounced_hard"))
        assert (bounce.lead_id, bounce.data["channel"]) == (gone, "wechat")
    # And its email and SMS went out while its second WeChat touch was withheld, saying why
    rows = [(d.lead_id, d.channel, d.status) for d in deliveries(sessions)]
    assert sorted(rows) == sorted(
        [
            (gone, "wechat", "failed"),
            (gone, "email", "sent"),
            (gone, "wechat", "suppressed"),
            (gone, "sms", "sent"),
            (kept, "wechat", "sent"),
            (kept, "email", "sent"),
            (kept, "wechat", "sent"),
            (kept, "sms", "sent"),
        ]
    )
    [withheld] = [d for d in deliveries(sessions) if d.status == "suppressed"]
    assert (withheld.error or "").startswith("wechat is closed for this lead: bounced_hard on")
    assert "43004" in (withheld.error or "")
    sent_to = sorted(r.json["touser"] for r in provider.requests if r.path == "/wechat")
    assert sent_to == ["o-1", "o-1", "o-unfollowed"]  # no second try at the closed openid
    # And both enrollments ran to the end rather than exiting
    assert {(e.state, e.exit_reason) for e in enrollments(sessions)} == {("done", None)}


def test_a_closed_number_gets_no_sms_while_email_and_wechat_go_out(
    settings: Settings,
    sessions: sessionmaker[Session],
    clock: VirtualClock,
    tmp_path: Path,
    provider: Provider,
) -> None:
    # Given SMS closed for a number (a STOP reply), and a lead with that number
    with sessions() as session, session.begin():
        suppress(session, "sms", "+8613912345678", "SMS reply 'TD'", MONDAY)
    deploy(sessions, tmp_path / "c", clock, WECHAT_THEN_EMAIL)
    lead = add_lead(sessions, messaging_id="o-1")
    settings = configured(settings, provider)

    # When the campaign runs
    run(settings, clock)
    clock.advance(timedelta(days=1, minutes=1))
    run(settings, clock)

    # Then WeChat and email went out and the SMS was withheld with the reason
    rows = [(d.channel, d.status) for d in deliveries(sessions)]
    assert rows == [
        ("wechat", "sent"),
        ("email", "sent"),
        ("wechat", "sent"),
        ("sms", "suppressed"),
    ]
    assert deliveries(sessions)[-1].error == "sms is closed for this lead: SMS reply 'TD'"
    assert not [r for r in provider.requests if r.path == "/sms"]
    with sessions() as session:
        row = session.get(Lead, lead)
        assert row is not None and not row.suppressed


def test_required_consent_withholds_the_channel_from_a_lead_without_it(
    settings: Settings,
    sessions: sessionmaker[Session],
    clock: VirtualClock,
    tmp_path: Path,
    provider: Provider,
) -> None:
    # Given NURTURE_REQUIRE_CONSENT=sms, and leads with SMS consent given, withdrawn, or none
    deploy(sessions, tmp_path / "c", clock, WECHAT_THEN_EMAIL)
    given = add_lead(sessions, "given@client.example", phone="+8613912345671")
    withdrawn = add_lead(sessions, "withdrawn@client.example", phone="+8613912345672")
    none = add_lead(sessions, "none@client.example", phone="+8613912345673")
    with sessions() as session, session.begin():
        record_consents(session, given, {"sms": True}, "pricing form", MONDAY)
        record_consents(session, withdrawn, {"sms": False}, "api", MONDAY)
    settings = configured(settings, provider).with_changes(require_consent=("sms",))

    # When the campaign runs
    run(settings, clock)
    clock.advance(timedelta(days=1, minutes=1))
    run(settings, clock)

    # Then only the lead who consented got the SMS; the others' touches say why, and they
    # still got their email
    sms = {d.lead_id: (d.status, d.error) for d in deliveries(sessions) if d.channel == "sms"}
    assert sms == {
        given: ("sent", None),
        withdrawn: (
            "suppressed",
            f"sms is closed for this lead: consent for sms withdrawn (api, {MONDAY.isoformat()})",
        ),
        none: (
            "suppressed",
            "sms is closed for this lead: no consent for sms (NURTURE_REQUIRE_CONSENT)",
        ),
    }
    emails = {
        d.lead_id for d in deliveries(sessions) if d.channel == "email" and d.status == "sent"
    }
    assert emails == {given, withdrawn, none}
    assert [r.json["to"] for r in provider.requests if r.path == "/sms"] == ["+8613912345671"]
