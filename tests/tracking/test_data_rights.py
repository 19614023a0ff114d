"""Data-subject rights over the API: export everything stored about a person, forget them
(personal data erased, counts kept, the addresses hashed so a re-import gets nothing)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nurture.models import Consent, Delivery, Event, Lead, Suppression, Tag
from nurture.store.suppressions import address_hash, closed_channels
from tests.tracking.conftest import AUTH, Seed

ADA = {
    "email": "ada@acme.cn",
    "phone": "+8613952718364",
    "messaging_id": "o-ada",
    "first_name": "Ada",
    "company": "Acme",
    "tags": ["trial"],
    "plan": "gold",
    "consent_email": "yes",
}


async def post(client: httpx.AsyncClient, path: str, body: Any) -> httpx.Response:
    return await client.post(path, json=body, headers=AUTH)


async def ada(client: httpx.AsyncClient, seed: Seed) -> int:
    stored = await post(client, "/api/leads", ADA)
    assert stored.status_code == 200, stored.text
    lead_id: int = stored.json()["ids"][0]
    touch = seed.touch(lead_id)
    clicked = {"lead": {"id": lead_id}, "type": "clicked", "delivery_id": touch.delivery_id}
    answer = await post(client, "/api/events", {**clicked, "data": {"ip": "203.0.113.9"}})
    assert answer.status_code == 200, answer.text
    return lead_id


def count(sessions: sessionmaker[Session], model: Any) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.asyncio
async def test_an_export_holds_everything_stored_about_the_person(
    any_client: httpx.AsyncClient, seed: Seed
) -> None:
    lead_id = await ada(any_client, seed)

    response = await post(any_client, "/api/leads/export-data", {"lead": "ADA@acme.cn"})

    assert response.status_code == 200, response.text
    data = response.json()
    assert data["lead"]["email"] == "ada@acme.cn" and data["lead"]["id"] == lead_id
    assert data["lead"]["attributes"] == {"plan": "gold"}
    assert [t["tag"] for t in data["tags"]] == ["trial"]
    assert [(c["channel"], c["granted"], c["source"]) for c in data["consents"]] == [
        ("email", True, "api")
    ]
    assert [e["type"] for e in data["events"]] == ["clicked"]
    assert data["events"][0]["data"] == {"ip": "203.0.113.9"}
    assert [d["template"] for d in data["deliveries"]] == ["welcome/cxo"]
    assert len(data["enrollments"]) == 1


@pytest.mark.asyncio
async def test_forgetting_erases_the_person_and_keeps_counts_and_hashed_addresses(
    client: httpx.AsyncClient, seed: Seed, sessions: sessionmaker[Session]
) -> None:
    lead_id = await ada(client, seed)
    events, deliveries = count(sessions, Event), count(sessions, Delivery)

    response = await post(client, "/api/leads/forget", {"lead": lead_id})

    # Then the personal data is gone, and the counts are kept
    assert response.status_code == 200, response.text
    assert response.json()["forgotten"] is True
    with sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None and lead.suppressed
        personal = (lead.email, lead.phone, lead.messaging_id, lead.first_name, lead.company)
        assert personal == (None, None, None, None, None) and lead.attributes == {}
        assert [e.data for e in session.scalars(select(Event))] == [{}]
        hashes = {
            (s.channel, s.address_hash, s.lead_id) for s in session.scalars(select(Suppression))
        }
    assert hashes == {
        ("all", address_hash("all", "ada@acme.cn"), None),
        ("all", address_hash("all", "+8613952718364"), None),
        ("all", address_hash("all", "o-ada"), None),
    }
    assert (count(sessions, Event), count(sessions, Delivery)) == (events, deliveries)
    assert count(sessions, Tag) == 0 and count(sessions, Consent) == 0

    # And the export says nothing about them any more
    left = (await post(client, "/api/leads/export-data", {"lead": lead_id})).json()
    assert "ada" not in str(left).lower() and "203.0.113.9" not in str(left)

    # And a re-import of the same person gets nothing, on any channel
    again = await post(client, "/api/leads", {"email": "ada@acme.cn", "phone": "+8613952718364"})
    new_id = again.json()["ids"][0]
    assert new_id != lead_id
    with sessions() as session:
        new = session.get(Lead, new_id)
        assert new is not None
        assert set(closed_channels(session, [new])[new_id]) == {"email", "sms", "wechat"}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "body", "status", "problem"),
    [
        ("/api/leads/forget", {"lead": "nobody@acme.cn"}, 404, "$.lead"),
        ("/api/leads/forget", {}, 422, "$.lead"),
        ("/api/leads/forget", {"lead": True}, 422, "$.lead"),
        ("/api/leads/forget", {"lead": "ada@acme.cn", "why": 1}, 422, "$.why"),
        ("/api/leads/export-data", [1], 422, "$"),
    ],
)
async def test_a_bad_request_is_refused_and_forgets_nothing(
    client: httpx.AsyncClient,
    seed: Seed,
    sessions: sessionmaker[Session],
    path: str,
    body: Any,
    status: int,
    problem: str,
) -> None:
    lead_id = await ada(client, seed)
    response = await post(client, path, body)
    assert response.status_code == status
    assert response.json()["errors"][0]["path"] == problem
    forged = await client.post(path, json={"lead": lead_id}, headers={"X-API-Key": "forged"})
    assert forged.status_code == 401
    with sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None and lead.email == "ada@acme.cn" and not lead.suppressed
    assert count(sessions, Suppression) == 0
