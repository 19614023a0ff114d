"""``POST /api/sms/replies``: an SMS STOP / TD reply closes SMS for the number, nothing else;
a bad body or key is refused and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nurture.models import Event, Lead, Suppression
from nurture.store.suppressions import address_hash, closed_channels
from tests.tracking.conftest import AUTH, Seed

PHONE = "+8613912345678"


async def reply(client: httpx.AsyncClient, body: Any, headers: Any = AUTH) -> httpx.Response:
    return await client.post("/api/sms/replies", json=body, headers=headers)


def counts(sessions: sessionmaker[Session]) -> tuple[int, int]:
    with sessions() as session:
        closed = session.scalar(select(func.count()).select_from(Suppression)) or 0
        events = session.scalar(select(func.count()).select_from(Event)) or 0
        return closed, events


@pytest.mark.asyncio
async def test_a_td_reply_closes_sms_for_the_lead_and_nothing_else(
    any_client: httpx.AsyncClient, seed: Seed, sessions: sessionmaker[Session]
) -> None:
    # Given a lead with a phone
    lead_id = seed.lead(phone=PHONE, messaging_id="o-ada")

    # When the provider relays "TD" from the number, written as a Chinese national number would be
    response = await reply(any_client, {"from": "+86 139 1234 5678", "text": " TD "})

    # Then SMS is closed for that number and the lead gets an unsubscribed event on SMS alone
    assert response.status_code == 200, response.text
    assert response.json() == {"stopped": True, "lead": lead_id}
    with sessions() as session:
        [row] = session.scalars(select(Suppression))
        assert (row.channel, row.lead_id) == ("sms", lead_id)
        assert row.address_hash == address_hash("sms", PHONE)
        lead = session.get(Lead, lead_id)
        assert lead is not None and not lead.suppressed
        assert set(closed_channels(session, [lead])[lead_id]) == {"sms"}
        [event] = session.scalars(select(Event))
        assert (event.type, event.data["channel"]) == ("unsubscribed", "sms")

    # And a second STOP records nothing twice
    again = await reply(any_client, {"from": PHONE, "text": "退订"})
    assert again.json() == {"stopped": True, "lead": lead_id}
    assert counts(sessions) == (1, 1)


@pytest.mark.asyncio
async def test_a_stop_from_an_unknown_number_still_closes_it(
    any_client: httpx.AsyncClient, seed: Seed, sessions: sessionmaker[Session]
) -> None:
    response = await reply(any_client, {"from": PHONE, "text": "STOP"})
    assert response.json() == {"stopped": True, "lead": None}
    # a lead imported later with that number has SMS closed
    lead_id = seed.lead(phone=PHONE)
    with sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        assert set(closed_channels(session, [lead])[lead_id]) == {"sms"}


@pytest.mark.asyncio
async def test_other_replies_change_nothing(
    any_client: httpx.AsyncClient, seed: Seed, sessions: sessionmaker[Session]
) -> None:
    lead_id = seed.lead(phone=PHONE)
    response = await reply(any_client, {"from": PHONE, "text": "please call me tomorrow"})
    assert response.json() == {"stopped": False, "lead": lead_id}
    assert counts(sessions) == (0, 0)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "problems"),
    [
        ([1], [("$", 'expected an object: {"from": PHONE, "text": TEXT}')]),
        ({"text": "STOP"}, [("$.from", "required: the sender's phone number")]),
        ({"from": "call me", "text": "STOP"}, [("$.from", "'call me' is not a phone number")]),
        ({"from": PHONE}, [("$.text", "required: the text of the reply")]),
        ({"from": PHONE, "text": "STOP\x00"}, [("$.text", "contains a NUL character")]),
        ({"from": PHONE, "text": "STOP", "to": "x"}, [("$.to", "unknown field")]),
    ],
)
async def test_a_bad_reply_is_refused_naming_the_field(
    client: httpx.AsyncClient,
    sessions: sessionmaker[Session],
    body: Any,
    problems: list[tuple[str, str]],
) -> None:
    response = await reply(client, body)
    assert response.status_code == 422
    found = [(e["path"], e["message"]) for e in response.json()["errors"]]
    assert [(p, m[: len(want)]) for (p, m), (_, want) in zip(found, problems, strict=True)] == [
        (p, m) for p, m in problems
    ]
    assert counts(sessions) == (0, 0)


@pytest.mark.asyncio
async def test_a_reply_without_the_api_key_is_refused(
    client: httpx.AsyncClient, sessions: sessionmaker[Session]
) -> None:
    forged = {"Authorization": "Bearer not-the-key"}
    assert (await reply(client, {"from": PHONE, "text": "STOP"}, forged)).status_code == 401
    assert (await reply(client, {"from": PHONE, "text": "STOP"}, {})).status_code == 401
    assert counts(sessions) == (0, 0)


@pytest.mark.asyncio
async def test_an_event_naming_a_channel_closes_it_and_a_bad_channel_is_refused(
    client: httpx.AsyncClient, seed: Seed, sessions: sessionmaker[Session]
) -> None:
    # Given a lead with every address
    lead_id = seed.lead(email="ada@acme.cn", phone=PHONE, messaging_id="o-ada")
    bounce = {"lead": {"email": "ada@acme.cn"}, "type": "bounced_hard"}

    # When a hard bounce names a channel that is not one, nothing is recorded
    bad = await client.post(
        "/api/events", json={**bounce, "data": {"channel": "fax"}}, headers=AUTH
    )
    assert bad.status_code == 422
    assert bad.json()["errors"] == [
        {
            "path": "$.data.channel",
            "message": "'fax' is not a channel to close; one of email, sms, wechat, all",
        }
    ]
    assert counts(sessions) == (0, 0)

    # And one naming WeChat closes WeChat alone
    good = await client.post(
        "/api/events", json={**bounce, "data": {"channel": "wechat"}}, headers=AUTH
    )
    assert good.status_code == 200, good.text
    with sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None and not lead.suppressed
        assert set(closed_channels(session, [lead])[lead_id]) == {"wechat"}
