"""`POST /api/sales/<action>`: the same answers as `nurture sales`, with the API key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nurture import db
from nurture.models import Lead, MqlRecord, SalesMember
from nurture.tokens import TokenSigner
from nurture.tracking import create_app
from tests.handoff.test_handoff_store import RULES, east_lead, qualify
from tests.handoff.test_route import deployed

pytestmark = pytest.mark.asyncio
KEY = "sales-api-key"


@pytest_asyncio.fixture
async def api(migrated_engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    """The service over a database with one MQL (owner wang.fang@t.io) and the routing."""
    with Session(migrated_engine) as session:
        session.add(deployed(dict(RULES.routing or {})))
        assert (
            qualify(session, east_lead(session, "ada@corp.com"), RULES, datetime.now(UTC))
            is not None
        )
        session.commit()
    app = create_app(db.session_factory(migrated_engine), TokenSigner("k" * 32), api_key=KEY)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        yield c


def state(engine: Engine) -> tuple[str, str | None, bool]:
    with Session(engine) as session:
        lead = session.scalars(select(Lead)).one()
        mql = session.scalars(select(MqlRecord)).one()
        return lead.stage, lead.owner, mql.accepted_at is not None


async def test_the_owner_accepts_and_reports_a_won_deal(
    api: httpx.AsyncClient, migrated_engine: Engine
) -> None:
    accepted = await api.post(
        "/api/sales/accept", json={"lead": "ada@corp.com", "by": "wang.fang@t.io"}
    )
    won = await api.post(
        "/api/sales/stage",
        json={"lead": 1, "stage": "won", "by": "wang.fang@t.io", "amount": 12000},
    )

    assert accepted.status_code == 200 and accepted.json()["said"].endswith("wang.fang@t.io")
    assert won.json() == {
        "lead": 1,
        "said": "lead 1 is customer now, amount 12000.00",
        "changed": True,
    }
    assert state(migrated_engine) == ("customer", "wang.fang@t.io", True)


async def test_a_member_goes_away_and_comes_back(
    api: httpx.AsyncClient, migrated_engine: Engine
) -> None:
    away = await api.post("/api/sales/away", json={"member": "li.na@t.io", "until": "2099-01-01"})
    with Session(migrated_engine) as session:
        row = session.get(SalesMember, "li.na@t.io")
        assert row is not None and row.away_until == datetime(2099, 1, 1, tzinfo=UTC)
    back = await api.post("/api/sales/away", json={"member": "li.na@t.io", "until": None})

    assert (away.status_code, back.status_code) == (200, 200)
    assert back.json()["said"] == "li.na@t.io is back and receives leads again"


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("accept", {"lead": "x@corp.com", "by": "a@t.io"}, 404, "no lead 'x@corp.com'"),
        ("accept", {"lead": 1, "by": "li.na@t.io"}, 409, "belongs to wang.fang@t.io"),
        ("return", {"lead": 1, "by": "wang.fang@t.io"}, 422, "$.reason: required"),
        (
            "stage",
            {"lead": 1, "stage": "sql", "by": "wang.fang@t.io", "x": 1},
            422,
            "$.x: unknown field",
        ),
        (
            "stage",
            {"lead": 1, "stage": "won", "by": "wang.fang@t.io", "amount": "lots"},
            409,
            "is not a number",
        ),
        ("away", {"member": "who@t.io"}, 404, "no sales member 'who@t.io'"),
        ("away", {"member": "li.na@t.io", "until": "soon"}, 422, "$.until: not an ISO 8601"),
        ("fly", {}, 422, "no action 'fly'"),
        ("accept", [1], 422, "send a JSON object"),
    ],
)
async def test_a_bad_answer_is_a_4xx_naming_what_and_changes_nothing(
    api: httpx.AsyncClient, migrated_engine: Engine, path: str, body: Any, status: int, words: str
) -> None:
    response = await api.post(f"/api/sales/{path}", json=body)

    assert response.status_code == status
    said = "; ".join(f"{e['path']}: {e['message']}" for e in response.json()["errors"])
    assert words in said
    assert state(migrated_engine) == ("mql", "wang.fang@t.io", False)


async def test_without_the_key_nothing_is_answered(
    api: httpx.AsyncClient, migrated_engine: Engine
) -> None:
    response = await api.post(
        "/api/sales/accept", json={"lead": 1, "by": "wang.fang@t.io"}, headers={"Authorization": ""}
    )

    assert response.status_code == 401
    assert state(migrated_engine) == ("mql", "wang.fang@t.io", False)
