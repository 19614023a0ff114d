"""The event and lead API in detail: bodies, every validation message, and the answers."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from nurture.engine.clock import VirtualClock
from nurture.models import EVENT_TYPES
from nurture.store.cleaning import LeadRules
from nurture.tokens import TokenSigner
from nurture.tracking import MAX_BODY, MAX_ITEMS, create_app
from nurture.tracking import records as records_module
from tests.tracking.conftest import API_KEY, AUTH, Seed, T


async def post(client: httpx.AsyncClient, path: str, body: Any) -> httpx.Response:
    return await client.post(path, json=body, headers=AUTH)


def errors(response: httpx.Response) -> list[tuple[str, str]]:
    return [(e["path"], e["message"]) for e in response.json()["errors"]]


# ---------------------------------------------------------------- bodies


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (b"", 400, "the body is empty; send a JSON object or a list of them"),
        (b'{"lead": ', 400, "the body is not valid JSON: Expecting value at line 1 column 10"),
        (b"\xff\xfe{}", 400, "the body is not UTF-8 text (byte 0)"),
        (b'{"at": NaN}', 400, "the body is not valid JSON: NaN is not a JSON number"),
        (b'"hello"', 422, "expected an object or a list of objects, not a string"),
        (b"[]", 422, "the list is empty"),
        (b"[1]", 422, "expected an object, not a number"),
        (b"[" * 100_000, 400, "the body is not valid JSON: arrays and objects nest more than 64"),
        (b"[" * 900 + b"]" * 900, 400, "the body is not valid JSON: arrays and objects nest more"),
        (b'{"delivery_id": ' + b"9" * 5000 + b"}", 400, "the body is not valid JSON: a number has"),
    ],
)
async def test_a_body_that_is_not_json_items_is_refused(
    client: httpx.AsyncClient, seed: Seed, content: bytes, status: int, message: str
) -> None:
    response = await client.post("/api/events", content=content, headers=AUTH)

    assert response.status_code == status
    [(path, got)] = errors(response)
    assert path in ("$", "$[0]")
    assert got.startswith(message)
    assert seed.event_count() == 0


@pytest.mark.asyncio
async def test_a_number_too_large_for_a_float_is_refused_not_stored_as_infinity(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    seed.lead(email="ada@acme.cn")
    event = b'{"lead": {"email": "ada@acme.cn"}, "type": "opened", "data": {"n": 1e999}}'
    lead = b'{"email": "bo@acme.cn", "budget": -1e999}'

    events = await client.post("/api/events", content=event, headers=AUTH)
    leads = await client.post("/api/leads", content=lead, headers=AUTH)

    assert (events.status_code, errors(events)) == (
        422,
        [("$.data.n", "inf is not a finite number")],
    )
    assert (leads.status_code, errors(leads)) == (
        422,
        [("$.budget", "-inf is not a finite number")],
    )
    assert seed.event_count() == 0


@pytest.mark.asyncio
async def test_too_many_items_or_bytes_are_refused(client: httpx.AsyncClient) -> None:
    items = [{"email": f"u{i}@acme.cn"} for i in range(MAX_ITEMS + 1)]
    many = await post(client, "/api/leads", items)
    large = await client.post("/api/leads", content=b" " * (MAX_BODY + 1), headers=AUTH)

    async def chunks() -> Any:  # no Content-Length: the limit holds while streaming
        for _ in range(5):
            yield b" " * (MAX_BODY // 4)

    streamed = await client.post("/api/leads", content=chunks(), headers=AUTH)

    assert many.status_code == 422
    assert errors(many) == [("$", f"{MAX_ITEMS + 1} items; send at most {MAX_ITEMS} per request")]
    assert (large.status_code, streamed.status_code) == (413, 413)


@pytest.mark.asyncio
async def test_the_api_is_disabled_without_a_key(
    sessions: sessionmaker[Session], signer: TokenSigner
) -> None:
    app = create_app(sessions, signer, api_key=None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t.test") as client:
        response = await post(client, "/api/events", {})

    assert response.status_code == 503
    assert "NURTURE_API_KEY" in errors(response)[0][1]


@pytest.mark.asyncio
async def test_an_unexpected_error_is_a_500_without_internals(
    client: httpx.AsyncClient,
    seed: Seed,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed.lead(email="ada@acme.cn")

    def explode(*args: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(records_module, "record_events", explode)
    with caplog.at_level(logging.ERROR, logger="nurture.tracking"):
        response = await post(
            client, "/api/events", {"lead": {"email": "ada@acme.cn"}, "type": "opened"}
        )

    assert response.status_code == 500
    assert errors(response) == [("$", "internal error; it has been logged")]
    assert "secret internals" not in response.text
    assert "secret internals" in caplog.text


# ---------------------------------------------------------------- events


LEAD = {"email": "ada@acme.cn"}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("event", "problems"),
    [
        (
            {"type": "opened"},
            [("$.lead", "required: an object with email, phone, messaging_id or id")],
        ),
        (
            {"lead": {}, "type": "opened"},
            [("$.lead", "give the lead's email, phone, messaging_id or id")],
        ),
        (
            {"lead": {"mail": "a@b.cn"}, "type": "opened"},
            [("$.lead.mail", "unknown field; expected email, phone, messaging_id, id")],
        ),
        (
            {"lead": {"email": "nope"}, "type": "opened"},
            [("$.lead.email", "'nope' is not an email address")],
        ),
        (
            {"lead": {"phone": "call me"}, "type": "opened"},
            [("$.lead.phone", "'call me' is not a phone number (digits, spaces, -, (), + only)")],
        ),
        (
            {"lead": {"id": True}, "type": "opened"},
            [("$.lead.id", "should be an integer id, not a boolean")],
        ),
        (
            {"lead": {"id": 2**40}, "type": "opened"},
            [("$.lead.id", f"{2**40} is not an id (1 to 2147483647)")],
        ),
        (
            {"lead": LEAD},
            [
                (
                    "$.type",
                    "required: one of " + ", ".join(EVENT_TYPES),
                )
            ],
        ),
        ({"lead": LEAD, "type": "custom"}, [("$.name", "a custom event needs a name")]),
        (
            {"lead": LEAD, "type": "custom", "name": " "},
            [("$.name", "should be a non-empty string, not a string")],
        ),
        (
            {"lead": LEAD, "type": "opened", "name": "x"},
            [("$.name", "is only for custom events; put other details in data")],
        ),
        (
            {"lead": LEAD, "type": "opened", "at": "yesterday"},
            [("$.at", "'yesterday' is not an ISO-8601 time such as 2026-03-02T09:00:00Z")],
        ),
        (
            {"lead": LEAD, "type": "opened", "at": "2026-03-01T09:00:00"},
            [("$.at", "'2026-03-01T09:00:00' has no time zone; add Z or an offset such as +08:00")],
        ),
        (
            {"lead": LEAD, "type": "opened", "at": "2026-03-03T09:00:00Z"},
            [
                (
                    "$.at",
                    "'2026-03-03T09:00:00Z' is in the future (now is 2026-03-02T09:00:00+00:00)",
                )
            ],
        ),
        (
            {"lead": LEAD, "type": "opened", "at": "0001-01-01T00:00:00+14:00"},
            [("$.at", "'0001-01-01T00:00:00+14:00' is out of range (years 1 to 9999 in UTC)")],
        ),
        (
            {"lead": LEAD, "type": "opened", "data": [1]},
            [("$.data", "should be an object, not a list")],
        ),
        (
            {"lead": LEAD, "type": "opened", "data": {"a": {"b": "x\u0000"}}},
            [("$.data.a.b", "contains a NUL character")],
        ),
        (
            {"lead": LEAD, "type": "opened", "data": {"键 1": "\ud800"}},
            [("$.data['键 1']", "contains a lone surrogate, which is not text")],
        ),
        (
            {"lead": LEAD, "type": "opened", "colour": "red"},
            [("$.colour", "unknown field; expected lead, type, name, at, link, delivery_id, data")],
        ),
        (
            {"lead": LEAD, "type": "opened", "delivery_id": 77},
            [("$.delivery_id", "no delivery 77 of this lead")],
        ),
        (
            {"lead": {"email": "ada@acme.cn", "messaging_id": "wx_li"}, "type": "opened"},
            [("$.lead", "email and messaging_id name different leads")],
        ),
    ],
)
async def test_each_bad_event_field_is_named(
    client: httpx.AsyncClient, seed: Seed, event: dict[str, Any], problems: list[tuple[str, str]]
) -> None:
    seed.lead(email="ada@acme.cn")
    seed.lead(email="li@acme.cn", messaging_id="wx_li")

    response = await client.post("/api/events", content=json.dumps(event).encode(), headers=AUTH)

    assert response.status_code == 422
    assert errors(response) == problems
    assert seed.event_count() == 0


@pytest.mark.asyncio
async def test_an_event_keeps_its_own_time_data_and_delivery(
    client: httpx.AsyncClient, seed: Seed, clock: VirtualClock
) -> None:
    touch = seed.touch(seed.lead(email="ada@acme.cn"))
    event = {
        "lead": {"id": touch.lead_id},
        "type": "replied",
        "at": "2026-03-01T17:30:00+08:00",
        "delivery_id": touch.delivery_id,
        "data": {"subject": "回复：白皮书"},
    }

    response = await post(client, "/api/events", event)

    assert response.status_code == 200
    [stored] = seed.events(touch.lead_id)
    assert stored.occurred_at == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert (stored.delivery_id, stored.data) == (touch.delivery_id, {"subject": "回复：白皮书"})


@pytest.mark.asyncio
async def test_an_event_for_a_merged_lead_id_goes_to_the_lead_it_became(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    a = seed.lead(email="ada@acme.cn")
    b = seed.lead(email=None, phone="+8615061827305")
    merged = await post(client, "/api/leads", {"email": "ada@acme.cn", "phone": "+8615061827305"})
    assert merged.json()["merged"] == [{"from": b, "into": a}]

    response = await post(client, "/api/events", {"lead": {"id": b}, "type": "page_viewed"})

    assert response.status_code == 200
    assert [e.lead_id for e in seed.events()] == [a]


@pytest.mark.asyncio
async def test_an_unsubscribe_event_from_the_api_suppresses(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    lead_id = seed.lead(email="ada@acme.cn")

    response = await post(client, "/api/events", {"lead": LEAD, "type": "complained"})

    assert response.status_code == 200
    lead = seed.get_lead(lead_id)
    assert lead is not None and lead.complained_at == T and lead.suppressed


# ---------------------------------------------------------------- leads


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("lead", "problems"),
    [
        ({"first_name": "Ada"}, [("$", "a lead needs an email, a phone or a messaging_id")]),
        ({"email": "  "}, [("$", "a lead needs an email, a phone or a messaging_id")]),
        ({"email": 5}, [("$.email", "should be a string, not a number")]),
        (
            {"email": "a@b.cn", "phone": "12"},
            [("$.phone", "'12' has 2 digits; a phone has 5 to 15")],
        ),
        (
            {"email": "a@b.cn", "company": "x" * 201},
            [("$.company", "is longer than 200 characters")],
        ),
        (
            {"email": "a@b.cn", "time_zone": "Mars/Olympus"},
            [("$.time_zone", "'Mars/Olympus' is not an IANA time zone such as Asia/Shanghai")],
        ),
        (
            {"email": "a@b.cn", "attributes": []},
            [("$.attributes", "should be an object, not a list")],
        ),
        (
            {"email": "a@b.cn", "attributes": {"title": "CTO"}},
            [("$.attributes.title", "is a lead field; give it at the top level")],
        ),
        (
            {"email": "a@b.cn", "tags": "vip"},
            [("$.tags", "should be a list of strings, not a string")],
        ),
        (
            {"email": "a@b.cn", "tags": ["ok", ""]},
            [("$.tags[1]", "should be a non-empty string of at most 100 characters")],
        ),
        (
            {"email": "a@b.cn", "stage": "sql"},
            [("$.stage", "is managed by nurture and cannot be set here")],
        ),
        ({"email": "a@b.cn", "note": "a\u0000b"}, [("$.note", "contains a NUL character")]),
    ],
)
async def test_each_bad_lead_field_is_named(
    client: httpx.AsyncClient, seed: Seed, lead: dict[str, Any], problems: list[tuple[str, str]]
) -> None:
    response = await post(client, "/api/leads", lead)

    assert response.status_code == 422
    assert errors(response) == problems
    assert seed.lead_count() == 0


@pytest.mark.asyncio
async def test_competitors_are_skipped_when_configured(
    sessions: sessionmaker[Session], signer: TokenSigner, clock: VirtualClock, seed: Seed
) -> None:
    rules = LeadRules(competitor_domains=frozenset({"rival.cn"}))
    app = create_app(sessions, signer, api_key=API_KEY, clock=clock, lead_rules=rules)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t.test") as client:
        response = await post(client, "/api/leads", [{"email": "spy@sales.rival.cn"}])

    assert response.json()["skipped"] == [
        {"index": 0, "reason": "competitor's email domain rival.cn"}
    ]
    assert seed.lead_count() == 0


@pytest.mark.asyncio
async def test_a_new_email_for_a_lead_found_by_phone_is_kept_beside_its_own(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    lead_id = seed.lead(email="ada@old.cn", phone="+8615061827305")

    response = await post(client, "/api/leads", {"email": "ada@new.cn", "phone": "+8615061827305"})

    assert response.json()["updated"] == [lead_id]
    lead = seed.get_lead(lead_id)
    assert lead is not None
    assert (lead.email, lead.attributes["other_emails"]) == ("ada@old.cn", ["ada@new.cn"])


@pytest.mark.asyncio
async def test_leads_made_and_merged_in_one_request_report_the_survivor(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    response = await post(
        client,
        "/api/leads",
        [
            {"email": "ada@acme.cn"},
            {"phone": "+8615061827305"},
            {"email": "ada@acme.cn", "phone": "+8615061827305"},
        ],
    )

    body = response.json()
    [a] = body["created"]
    assert body["ids"] == [a, a, a]
    assert body["updated"] == [] and len(body["merged"]) == 1
    assert seed.lead_count() == 1
