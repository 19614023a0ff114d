"""Postmark's webhooks, posted to the tracking service under uvicorn with basic auth.

Postmark's documented records; our delivery travels in their ``Metadata``
(Postmark's MessageID is its own).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from nurture.deliverability.esp import EspConfig
from tests.deliverability.esp.conftest import Esp, Seed, sample

AUTH = "postmark:s3cret-webhook-password"
CONFIG = EspConfig(postmark_auth=AUTH)


def _post(
    url: str,
    record: dict[str, Any],
    auth: tuple[str, str] | None = ("postmark", "s3cret-webhook-password"),
) -> httpx.Response:
    return httpx.post(f"{url}/esp/postmark", json=record, auth=auth, timeout=10)


def _ours(name: str, delivery_id: int, **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = sample(name)
    record["Metadata"]["nurture_delivery"] = str(delivery_id)
    record.update(changes)
    return record


@pytest.mark.parametrize(
    ("name", "changes", "event_type", "kind", "hard"),
    [
        ("postmark_bounce.json", {}, "bounced_hard", "bounced", True),
        (
            "postmark_bounce.json",
            {"Type": "SoftBounce", "TypeCode": 4096},
            "bounced_soft",
            "bounced",
            False,
        ),
        ("postmark_spam_complaint.json", {}, "complained", "complained", None),
        ("postmark_delivery.json", {}, "delivered", "delivered", None),
        ("postmark_open.json", {}, "opened", "opened", None),
        ("postmark_click.json", {}, "clicked", "clicked", None),
        (
            "postmark_subscription_change.json",
            {"SuppressionReason": "ManualSuppression"},
            "unsubscribed",
            "unsubscribed",
            None,
        ),
    ],
)
def test_each_documented_record_is_recorded_once_on_its_delivery(
    esp: Esp,
    seed: Seed,
    name: str,
    changes: dict[str, Any],
    event_type: str,
    kind: str,
    hard: bool | None,
) -> None:
    touch = seed.touch()
    record = _ours(name, touch.delivery_id, **changes)

    with esp.serve(CONFIG) as url:
        first = _post(url, record)
        again = _post(url, record)

    assert first.status_code == 200, first.text
    assert first.json() == {"recorded": 1, "duplicates": 0, "unmatched": 0}
    assert again.json() == {"recorded": 0, "duplicates": 1, "unmatched": 0}
    [(source, _key, delivery, got_kind, got_hard)] = esp.receipts()
    assert (source, delivery, got_kind, got_hard) == ("postmark", touch.delivery_id, kind, hard)
    assert esp.events() == [(event_type, touch.delivery_id)]


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("postmark_bounce.json", {"Type": "AutoResponder", "TypeCode": 64}),
        ("postmark_bounce.json", {"Type": "AddressChange", "TypeCode": 128}),
        ("postmark_subscription_change.json", {}),  # HardBounce: its Bounce record says it
        ("postmark_subscription_change.json", {"SuppressSending": False}),
    ],
)
def test_out_of_office_and_echoes_are_not_bounces(
    esp: Esp, seed: Seed, name: str, changes: dict[str, Any]
) -> None:
    touch = seed.touch()

    with esp.serve(CONFIG) as url:
        response = _post(url, _ours(name, touch.delivery_id, **changes))

    assert response.status_code == 200
    assert response.json() == {"recorded": 0, "duplicates": 0, "unmatched": 0}
    assert esp.nothing_recorded()


@pytest.mark.parametrize(
    "auth", [None, ("postmark", "wrong"), ("other", "s3cret-webhook-password")]
)
def test_without_the_credentials_it_is_401_and_records_nothing(
    esp: Esp, seed: Seed, auth: tuple[str, str] | None
) -> None:
    touch = seed.touch()

    with esp.serve(CONFIG) as url:
        response = _post(url, _ours("postmark_bounce.json", touch.delivery_id), auth=auth)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert "NURTURE_POSTMARK_WEBHOOK_AUTH" in response.json()["errors"][0]["message"]
    assert esp.nothing_recorded()


def test_a_record_without_our_metadata_is_200_and_recorded_nowhere(esp: Esp, seed: Seed) -> None:
    seed.touch()

    with esp.serve(CONFIG) as url:
        response = _post(url, sample("postmark_bounce.json"))
        bad_time = _post(url, {**sample("postmark_delivery.json"), "DeliveredAt": "yesterday"})

    assert response.json() == {"recorded": 0, "duplicates": 0, "unmatched": 1}
    assert bad_time.status_code == 400
    assert bad_time.json()["errors"][0]["path"] == "$.DeliveredAt"
    assert esp.nothing_recorded()
