"""End to end: a campaign email through an ESP's relay carries the header that ESP echoes;
the ESP's webhook, built from what the relay received, records on that very delivery.

The relay is a real aiosmtpd server (named an ESP by ``NURTURE_SMTP_ESP``, as a
local Postfix forwarding to it would be); the webhook goes to the tracking
service under uvicorn, signed as the ESP signs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from email.policy import default
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nurture.config import Settings
from nurture.deliverability.esp import EspConfig
from nurture.deliverability.esp.sendgrid import public_key
from nurture.engine.clock import VirtualClock
from nurture.models import Event, Suppression
from nurture.store.suppressions import address_hash
from nurture.tokens import TokenSigner
from nurture.tracking import create_app
from tests.deliverability.conftest import LocalSmtp
from tests.deliverability.esp.conftest import sample
from tests.live import serving
from tests.runtime.conftest import add_lead
from tests.runtime.helpers import deliveries
from tests.runtime.test_embedded_providers import deploy, run

ONE_EMAIL = """\
campaign "Welcome"
  enroll when lead created
  send email "t/e"
"""
MAILGUN_KEY = "key-end-to-end-0123456789"
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())


class Relay:
    """aiosmtpd handler that keeps each message as received."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(message_from_bytes(envelope.original_content, policy=default))
        return "250 2.0.0 queued"


@pytest.fixture
def relay() -> Iterator[tuple[Relay, int]]:
    handler = Relay()
    controller = LocalSmtp(handler)
    controller.start()
    yield handler, controller.port
    controller.stop()


def _webhook(esp: str, sent: Message, now: float) -> tuple[str, dict[str, str], bytes]:
    """The ESP's documented bounce webhook for `sent`, carrying what the ESP echoes of it."""
    if esp == "postmark":
        record = sample("postmark_bounce.json")
        record["Metadata"]["nurture_delivery"] = sent["X-PM-Metadata-nurture_delivery"]
        auth = base64.b64encode(b"pm:pw").decode()
        return "postmark", {"Authorization": f"Basic {auth}"}, json.dumps(record).encode()
    if esp == "mailgun":
        payload = sample("mailgun_failed_permanent.json")
        payload["event-data"]["user-variables"].update(json.loads(sent["X-Mailgun-Variables"]))
        timestamp, token = str(int(now)), secrets.token_hex(25)
        digest = hmac.new(MAILGUN_KEY.encode(), (timestamp + token).encode(), hashlib.sha256)
        payload["signature"] = {
            "timestamp": timestamp,
            "token": token,
            "signature": digest.hexdigest(),
        }
        return "mailgun", {}, json.dumps(payload).encode()
    events = [e for e in sample("sendgrid_events.json") if e["event"] == "bounce"][:1]
    events[0].update(json.loads(sent["X-SMTPAPI"])["unique_args"])  # custom args: top level
    body = json.dumps(events).encode()
    signature = SENDGRID_KEY.sign(str(int(now)).encode() + body, ec.ECDSA(hashes.SHA256()))
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": str(int(now)),
    }
    return "sendgrid", headers, body


@pytest.mark.parametrize("esp", ["postmark", "mailgun", "sendgrid"])
def test_the_esp_echoes_the_header_and_its_bounce_lands_on_the_delivery(
    settings: Settings,
    sessions: sessionmaker[Session],
    clock: VirtualClock,
    tmp_path: Path,
    relay: tuple[Relay, int],
    esp: str,
) -> None:
    # Given a campaign, a lead, and the ESP's relay
    received, port = relay
    deploy(sessions, tmp_path / "c", clock, ONE_EMAIL)
    lead = add_lead(sessions, "ada@corp.com")
    settings = settings.with_changes(
        smtp_url=f"smtp://127.0.0.1:{port}?from=news@acme.test", smtp_esp=esp
    )

    # When the email goes out
    run(settings, clock)

    # Then the relay got it with the header the ESP turns into a custom argument
    [delivery] = deliveries(sessions)
    [sent] = received.messages
    assert sent["X-Nurture-Delivery"] == str(delivery.id)

    # When the ESP reports its bounce to the tracking service
    der = SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    config = EspConfig(
        sendgrid_key=public_key(base64.b64encode(der).decode()),
        postmark_auth="pm:pw",
        mailgun_key=MAILGUN_KEY,
    )
    signer = TokenSigner(list(settings.secret_keys()), clock=clock.now)
    app = create_app(sessions, signer, api_key=None, clock=clock, esp=config)
    path, headers, body = _webhook(esp, sent, clock.now().timestamp())
    with serving(app, "tracking service") as url:
        answer = httpx.post(f"{url}/esp/{path}", content=body, headers=headers, timeout=10)

    # Then the hard bounce is on that delivery, and Ada's email is closed
    assert answer.json() == {"recorded": 1, "duplicates": 0, "unmatched": 0}, answer.text
    with sessions() as session:
        events = session.execute(select(Event.type, Event.delivery_id, Event.lead_id)).all()
        closed = session.execute(select(Suppression.channel, Suppression.address_hash)).all()
    assert [tuple(e) for e in events] == [("bounced_hard", delivery.id, lead)]
    assert [tuple(c) for c in closed] == [("email", address_hash("email", "ada@corp.com"))]
