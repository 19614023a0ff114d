"""SendGrid's signed Event Webhook, posted to the tracking service under uvicorn.

SendGrid's documented batch (one of each event), signed by the test with an
ECDSA P-256 key it generates; the service is given the public key as SendGrid
shows it (base64 DER).
"""

from __future__ import annotations

import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from nurture.deliverability.esp import EspConfig
from nurture.deliverability.esp.sendgrid import public_key
from nurture.engine.clock import VirtualClock
from tests.deliverability.esp.conftest import Esp, Seed, sample

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _config(key: ec.EllipticCurvePrivateKey) -> EspConfig:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return EspConfig(sendgrid_key=public_key(base64.b64encode(der).decode()))


def _signed(key: ec.EllipticCurvePrivateKey, body: bytes, timestamp: str) -> dict[str, str]:
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        SIGNATURE: base64.b64encode(signature).decode(),
        TIMESTAMP: timestamp,
        "Content-Type": "application/json",
    }


def _post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{url}/esp/sendgrid", content=body, headers=headers, timeout=10)


def _batch(message_id: str, delivery_id: int) -> list[dict[str, Any]]:
    """SendGrid's sample batch about our message: the first half found by its Message-ID
    (``smtp-id``), the second by our ``nurture_delivery`` custom argument."""
    events = sample("sendgrid_events.json")
    for i, event in enumerate(events):
        if i < len(events) // 2:
            event["smtp-id"] = message_id
        else:
            event["nurture_delivery"] = str(delivery_id)
    return events


def test_the_documented_batch_records_each_event_once(
    esp: Esp, seed: Seed, clock: VirtualClock, key: ec.EllipticCurvePrivateKey
) -> None:
    # Given a delivery and SendGrid's sample batch about it, signed now
    touch = seed.touch()
    body = json.dumps(_batch(esp.message_id(touch.delivery_id), touch.delivery_id)).encode()
    headers = _signed(key, body, str(int(clock.now().timestamp())))

    # When SendGrid posts it, then retries it
    with esp.serve(_config(key)) as url:
        first = _post(url, body, headers)
        again = _post(url, body, headers)

    # Then each event that says something is recorded once, on that delivery
    assert first.status_code == 200, first.text
    assert first.json() == {"recorded": 9, "duplicates": 0, "unmatched": 0}
    assert again.json() == {"recorded": 0, "duplicates": 9, "unmatched": 0}
    kinds = [(kind, hard) for _source, _key, _delivery, kind, hard in esp.receipts()]
    assert kinds == [
        ("delivered", None),
        ("opened", None),
        ("clicked", None),
        ("bounced", True),  # type bounce
        ("bounced", False),  # type blocked
        ("bounced", True),  # dropped: Bounced Address
        ("complained", None),
        ("unsubscribed", None),  # unsubscribe
        ("unsubscribed", None),  # group_unsubscribe
    ]
    assert {d for _s, _k, d, _kind, _h in esp.receipts()} == {touch.delivery_id}
    assert esp.receipts()[0][:2] == ("sendgrid", "rWVYmVk90MjZJ9iohOBa3w==")


@pytest.mark.parametrize("forgery", ["other key", "altered body", "no signature", "stale"])
def test_a_forged_or_stale_batch_is_refused_and_records_nothing(
    esp: Esp, seed: Seed, clock: VirtualClock, key: ec.EllipticCurvePrivateKey, forgery: str
) -> None:
    touch = seed.touch()
    body = json.dumps(_batch(esp.message_id(touch.delivery_id), touch.delivery_id)).encode()
    now = str(int(clock.now().timestamp()))
    headers = _signed(key, body, now)
    if forgery == "other key":
        headers = _signed(ec.generate_private_key(ec.SECP256R1()), body, now)
    elif forgery == "altered body":
        body = body.replace(b"Bounced Address", b"Bounced Addresz")
    elif forgery == "no signature":
        del headers[SIGNATURE]
    else:
        headers = _signed(key, body, str(int((clock.now() - timedelta(hours=1)).timestamp())))

    with esp.serve(_config(key)) as url:
        response = _post(url, body, headers)

    expected = 401 if forgery == "no signature" else 403
    assert response.status_code == expected, response.text
    assert response.json()["errors"][0]["path"].startswith("X-Twilio-Email-Event-Webhook-")
    assert esp.nothing_recorded()


def test_a_signed_body_that_is_not_a_batch_is_400_naming_the_field(
    esp: Esp, seed: Seed, clock: VirtualClock, key: ec.EllipticCurvePrivateKey
) -> None:
    seed.touch()
    now = str(int(clock.now().timestamp()))
    bad_event = json.dumps([{"event": "delivered", "timestamp": 1513299569}]).encode()

    with esp.serve(_config(key)) as url:
        not_a_list = _post(url, b'{"event": "open"}', _signed(key, b'{"event": "open"}', now))
        no_id = _post(url, bad_event, _signed(key, bad_event, now))
    with esp.serve(EspConfig()) as url:
        off = _post(url, bad_event, _signed(key, bad_event, now))

    assert not_a_list.status_code == 400
    assert no_id.status_code == 400
    assert no_id.json()["errors"][0]["path"] == "$[0].sg_event_id"
    assert off.status_code == 503
    assert "NURTURE_SENDGRID_WEBHOOK_KEY" in off.json()["errors"][0]["message"]
    assert esp.nothing_recorded()


def test_events_about_other_messages_are_200_and_recorded_nowhere(
    esp: Esp, seed: Seed, clock: VirtualClock, key: ec.EllipticCurvePrivateKey
) -> None:
    # Given SendGrid's batch as documented: its smtp-id is no delivery of ours
    seed.touch()
    body = json.dumps(sample("sendgrid_events.json")).encode()

    with esp.serve(_config(key)) as url:
        response = _post(url, body, _signed(key, body, str(int(clock.now().timestamp()))))

    assert response.json() == {"recorded": 0, "duplicates": 0, "unmatched": 9}
    assert esp.nothing_recorded()


def test_the_same_batch_posted_six_times_at_once_records_each_event_once(
    esp: Esp, seed: Seed, clock: VirtualClock, key: ec.EllipticCurvePrivateKey
) -> None:
    # Given SendGrid's sample batch about one delivery, signed once
    touch = seed.touch()
    body = json.dumps(_batch(esp.message_id(touch.delivery_id), touch.delivery_id)).encode()
    headers = _signed(key, body, str(int(clock.now().timestamp())))
    start = threading.Barrier(6)

    def post(url: str) -> httpx.Response:
        start.wait()
        return _post(url, body, headers)

    # When six deliveries of it (a retry storm) arrive together, each on its own connection
    with esp.serve(_config(key)) as url, ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(post, [url] * 6))

    # Then every answer is 200, and between them each event was recorded exactly once
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    counts = [a.json() for a in answers]
    assert sum(c["recorded"] for c in counts) == 9, counts
    assert all(c["recorded"] + c["duplicates"] == 9 for c in counts), counts
    assert len(esp.receipts()) == 9
    assert len(esp.events()) == 9


@pytest.mark.parametrize(
    ("offset", "status"),
    [
        (timedelta(minutes=-15), 200),  # exactly as old as allowed
        (timedelta(minutes=-15, seconds=-1), 403),
        (timedelta(minutes=15), 200),  # a sender's clock ahead of ours, as far as allowed
        (timedelta(minutes=15, seconds=1), 403),
    ],
)
def test_the_signed_timestamp_may_be_15_minutes_off_and_no_more(
    esp: Esp,
    seed: Seed,
    clock: VirtualClock,
    key: ec.EllipticCurvePrivateKey,
    offset: timedelta,
    status: int,
) -> None:
    touch = seed.touch()
    body = json.dumps(_batch(esp.message_id(touch.delivery_id), touch.delivery_id)).encode()
    headers = _signed(key, body, str(int((clock.now() + offset).timestamp())))

    with esp.serve(_config(key)) as url:
        response = _post(url, body, headers)

    assert response.status_code == status, response.text
    if status == 403:
        assert response.json()["errors"][0]["path"] == TIMESTAMP
        assert "more than 0:15:00 away" in response.json()["errors"][0]["message"]
        assert esp.nothing_recorded()
    else:
        assert response.json()["recorded"] == 9


@pytest.mark.parametrize(
    ("reason", "kinds"),
    [
        ("Spam Content (if Spam Checker app is enabled)", []),
        ("Invalid SMTPAPI header", []),
        ("Recipient List over Package Quota", []),
        ("Invalid", [("bounced", True)]),
        ("Unsubscribed Address", [("unsubscribed", None)]),
    ],
)
def test_a_drop_for_our_content_or_account_is_no_bounce_of_the_address(
    esp: Esp,
    seed: Seed,
    clock: VirtualClock,
    key: ec.EllipticCurvePrivateKey,
    reason: str,
    kinds: list[tuple[str, bool | None]],
) -> None:
    # Given SendGrid's dropped event about our delivery, for a reason of its own
    touch = seed.touch()
    [dropped] = [e for e in sample("sendgrid_events.json") if e["event"] == "dropped"]
    dropped.update(reason=reason, nurture_delivery=str(touch.delivery_id))
    body = json.dumps([dropped]).encode()

    with esp.serve(_config(key)) as url:
        response = _post(url, body, _signed(key, body, str(int(clock.now().timestamp()))))

    # Then only a reason about the address itself is recorded
    assert response.status_code == 200, response.text
    assert [(kind, hard) for _s, _k, _d, kind, hard in esp.receipts()] == kinds
