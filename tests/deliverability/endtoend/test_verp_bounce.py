"""End to end: a campaign's email leaves through a real SMTP server with its signed VERP
return path as MAIL FROM; the DSN that comes back to that address over SMTP closes email
for the lead, the campaign's ``bounced`` branch sends SMS, and the next email is withheld."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nurture.config import Settings
from nurture.deliverability.feedback import BouncePolicy
from nurture.deliverability.inbound import BounceHandler
from nurture.deliverability.verp import verp_of
from nurture.engine.clock import VirtualClock
from nurture.models import Lead, Suppression
from nurture.store.suppressions import address_hash
from tests.channels.provider import TOKEN, Provider
from tests.deliverability.conftest import BOUNCE_DOMAIN, Listener, LocalSmtp
from tests.deliverability.messages import dsn
from tests.runtime.conftest import MONDAY, add_lead
from tests.runtime.helpers import deliveries
from tests.runtime.test_embedded_providers import deploy, run

BOUNCING = """\
campaign "Bouncing"
  enroll when lead created
  send email "t/e" as hello
  if bounced hello within 2 days:
    send sms "t/s"
  send email "t/e"
"""


@dataclass
class Sink:
    """aiosmtpd handler that keeps each message's envelope."""

    envelopes: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.envelopes.append(
                (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 2.0.0 queued"


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    controller = LocalSmtp(handler)
    controller.start()
    yield handler, controller.port
    controller.stop()


def test_a_dsn_to_the_return_path_closes_email_and_the_campaign_goes_on_by_sms(
    settings: Settings,
    sessions: sessionmaker[Session],
    clock: VirtualClock,
    tmp_path: Path,
    provider: Provider,
    sink: tuple[Sink, int],
) -> None:
    # Given a campaign, a lead, an SMTP server and a bounce domain
    received, port = sink
    deploy(sessions, tmp_path / "c", clock, BOUNCING)
    lead = add_lead(sessions, "ada@corp.com")
    settings = settings.with_changes(
        smtp_url=f"smtp://127.0.0.1:{port}?from=news@acme.test",
        bounce_domain=BOUNCE_DOMAIN,
        sms_url=f"{provider.base_url}/sms",
        sms_token=TOKEN,
    )
    verp = verp_of(settings)
    assert verp is not None

    # When the first email goes out
    run(settings, clock)

    # Then its envelope sender is the delivery's signed return path, not the From address
    [first] = deliveries(sessions)
    [(mail_from, rcpt_tos, data)] = received.envelopes
    assert mail_from == verp.address(first.id)
    assert rcpt_tos == ["ada@corp.com"] and b"From: Acme <news@acme.test>" in data

    # When the receiving server's DSN comes back to that address, over SMTP
    now = [MONDAY + timedelta(minutes=5)]
    handler = BounceHandler(sessions, verp, BouncePolicy.of(settings), clock=lambda: now[0])
    listener = Listener(handler)
    listener.start()
    try:
        reply = listener.send(dsn(mail_from, message_id=first.message_id), mail_from)
    finally:
        listener.stop()
    assert f"recorded bounced for delivery {first.id}" in reply

    # And the campaign runs on
    clock.advance(timedelta(minutes=10))
    run(settings, clock)

    # Then email is closed for Ada's address, not SMS: the bounced branch texted her,
    # and the next email was withheld saying why
    rows = [(d.channel, d.status) for d in deliveries(sessions)]
    assert rows == [("email", "sent"), ("sms", "sent"), ("email", "suppressed")]
    assert "email is closed for this lead: bounced_hard" in (deliveries(sessions)[-1].error or "")
    assert len(received.envelopes) == 1
    assert [r.json["to"] for r in provider.requests if r.path == "/sms"] == ["+8613912345678"]
    with sessions() as session:
        [closed] = session.scalars(select(Suppression)).all()
        assert (closed.channel, closed.address_hash) == (
            "email",
            address_hash("email", "ada@corp.com"),
        )
        row = session.get(Lead, lead)
        assert row is not None and not row.suppressed
