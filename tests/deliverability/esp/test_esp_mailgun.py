"""Mailgun's signed webhooks, posted to the tracking service under uvicorn.

Mailgun's documented payloads, re-signed by the test (HMAC-SHA256 of
timestamp + token under the signing key) with a fresh token each time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

import httpx
import pytest

from nurture.deliverability.esp import EspConfig
from nurture.engine.clock import VirtualClock
from tests.deliverability.esp.conftest import Esp, Seed, sample

KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
CONFIG = EspConfig(mailgun_key=KEY)


def _signed(payload: dict[str, Any], at: float, key: str = KEY) -> dict[str, Any]:
    timestamp, token = str(int(at)), secrets.token_hex(25)
    digest = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    payload["signature"] = {"timestamp": timestamp, "token": token, "signature": digest}
    return payload


def _ours(name: str, message_id: str) -> dict[str, Any]:
    """The sample about our message: its message-id header, as Mailgun writes it (no <>)."""
    payload: dict[str, Any] = sample(name)
    payload["event-data"]["message"]["headers"]["message-id"] = message_id.strip("<>")
    return payload


def _post(url: str, payload: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/esp/mailgun", json=payload, timeout=10)


@pytest.mark.parametrize(
    ("name", "event_type", "kind", "hard"),
    [
        ("mailgun_delivered.json", "delivered", "delivered", None),
        ("mailgun_failed_permanent.json", "bounced_hard", "bounced", True),
        ("mailgun_failed_temporary.json", "bounced_soft", "bounced", False),
        ("mailgun_complained.json", "complained", "complained", None),
        ("mailgun_opened.json", "opened", "opened", None),
        ("mailgun_clicked.json", "clicked", "clicked", None),
        ("mailgun_unsubscribed.json", "unsubscribed", "unsubscribed", None),
    ],
)
def test_each_documented_event_is_recorded_once_on_its_delivery(
    esp: Esp,
    seed: Seed,
    clock: VirtualClock,
    name: str,
    event_type: str,
    kind: str,
    hard: bool | None,
) -> None:
    touch = seed.touch()
    now = clock.now().timestamp()
    payload = _ours(name, esp.message_id(touch.delivery_id))

    # When Mailgun posts it, and retries it (a new token: the same event id)
    with esp.serve(CONFIG) as url:
        first = _post(url, _signed(payload, now))
        again = _post(url, _signed(payload, now))

    assert first.status_code == 200, first.text
    assert first.json() == {"recorded": 1, "duplicates": 0, "unmatched": 0}
    assert again.json() == {"recorded": 0, "duplicates": 1, "unmatched": 0}
    [(source, _key, delivery, got_kind, got_hard)] = esp.receipts()
    assert (source, delivery, got_kind, got_hard) == ("mailgun", touch.delivery_id, kind, hard)
    assert esp.events() == [(event_type, touch.delivery_id)]


def test_a_user_variable_finds_the_delivery(esp: Esp, seed: Seed, clock: VirtualClock) -> None:
    touch = seed.touch()
    payload = sample("mailgun_opened.json")
    payload["event-data"]["user-variables"]["nurture_delivery"] = str(touch.delivery_id)

    with esp.serve(CONFIG) as url:
        response = _post(url, _signed(payload, clock.now().timestamp()))

    assert response.json()["recorded"] == 1
    assert esp.events() == [("opened", touch.delivery_id)]


def test_temporary_failures_of_one_message_count_as_one_soft_bounce(
    esp: Esp, seed: Seed, clock: VirtualClock
) -> None:
    # Given Mailgun failing to deliver one message three times, temporarily (it retries)
    touch = seed.touch()
    now = clock.now().timestamp()

    with esp.serve(CONFIG) as url:
        for attempt in range(3):
            payload = _ours("mailgun_failed_temporary.json", esp.message_id(touch.delivery_id))
            payload["event-data"]["id"] = f"attempt-{attempt}"
            assert _post(url, _signed(payload, now)).status_code == 200

    # Then the address has one soft bounce, not three
    assert esp.events() == [("bounced_soft", touch.delivery_id)]


@pytest.mark.parametrize(
    ("forgery", "status"),
    [("other key", 403), ("altered token", 403), ("stale", 406), ("replayed token", 406)],
)
def test_forged_stale_and_replayed_requests_are_refused_and_record_nothing(
    esp: Esp, seed: Seed, clock: VirtualClock, forgery: str, status: int
) -> None:
    touch = seed.touch()
    now = clock.now().timestamp()
    payload = _ours("mailgun_failed_permanent.json", esp.message_id(touch.delivery_id))

    with esp.serve(CONFIG) as url:
        if forgery == "other key":
            response = _post(url, _signed(payload, now, key="key-someone-else"))
        elif forgery == "altered token":
            signed = _signed(payload, now)
            signed["signature"]["token"] = secrets.token_hex(25)
            response = _post(url, signed)
        elif forgery == "stale":
            response = _post(url, _signed(payload, now - timedelta(hours=1).total_seconds()))
        else:
            # a captured request about another message, posted again with this event
            other = _signed(sample("mailgun_opened.json"), now)
            assert _post(url, other).json()["unmatched"] == 1
            response = _post(url, {**payload, "signature": other["signature"]})

    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["path"].startswith("$.signature")
    assert esp.nothing_recorded()


def test_bad_bodies_are_400_and_an_unconfigured_webhook_is_503(
    esp: Esp, seed: Seed, clock: VirtualClock
) -> None:
    seed.touch()
    now = clock.now().timestamp()
    no_event = _signed({"event-data": {"id": "x", "timestamp": now}}, now)

    with esp.serve(CONFIG) as url:
        missing = _post(url, no_event)
        unsigned = _post(url, {"event-data": {}})
    with esp.serve(EspConfig()) as url:
        off = _post(url, _signed(sample("mailgun_opened.json"), now))

    assert missing.status_code == 400
    assert missing.json()["errors"][0]["path"] == "$.event-data.event"
    assert unsigned.status_code == 400
    assert unsigned.json()["errors"][0]["path"] == "$.signature"
    assert off.status_code == 503
    assert esp.nothing_recorded()
