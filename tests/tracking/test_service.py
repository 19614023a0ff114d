"""The tracking service end to end: each test runs in-process and against a real uvicorn.

Every scenario goes through `any_client` (in-process, then real HTTP on
127.0.0.1) on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import string
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nurture.engine.clock import VirtualClock
from nurture.engine.scoring import REPEAT_WINDOW
from nurture.models import Delivery, Enrollment, LeadMerge, LifecycleTransition, MqlRecord, Tag
from nurture.runtime.deploying import deploy_sources
from nurture.tokens import TokenSigner
from nurture.tracking import PIXEL_GIF
from tests.tracking.conftest import API_KEY, AUTH, Hooks, Seed, T

pytestmark = pytest.mark.asyncio


async def test_the_open_pixel_records_an_open_and_wakes_the_waiting_enrollment(
    any_client: httpx.AsyncClient, seed: Seed, signer: TokenSigner, hooks: Hooks
) -> None:
    # Given a lead parked on `if opened within 3 days` after a delivery
    touch = seed.touch()

    # When the reader's mail client loads the open pixel
    response = await any_client.get(f"/o/{signer.open_token(touch.delivery_id)}")

    # Then the pixel is a 1x1 GIF that is never cached
    assert response.status_code == 200
    assert response.content == PIXEL_GIF
    assert response.headers["content-type"] == "image/gif"
    assert response.headers["cache-control"] == "no-store"
    # And an open of that delivery is recorded, now
    [event] = seed.events(touch.lead_id)
    assert (event.type, event.delivery_id, event.occurred_at) == ("opened", touch.delivery_id, T)
    # And the enrollment is due now and handed to the runtime after the commit
    assert seed.get_enrollment(touch.enrollment_id).next_run_at == T
    assert hooks.woken == [[touch.enrollment_id]]


async def test_a_click_redirects_only_to_the_stored_link_and_records_its_name(
    any_client: httpx.AsyncClient, seed: Seed, signer: TokenSigner
) -> None:
    # Given a delivery whose link 0 is "download"
    touch = seed.touch()
    token = signer.click_token(touch.delivery_id, 0)

    # When the reader clicks, with a URL smuggled into the query string
    response = await any_client.get(f"/c/{token}?url=https://evil.test/&next=https://evil.test/")

    # Then they go to the stored link and nowhere else
    assert response.status_code == 302
    assert response.headers["location"] == "https://acme.cn/whitepaper.pdf"
    # And the click names the link, so `clicked "download"` matches
    [event] = seed.events(touch.lead_id)
    assert (event.type, event.link, event.delivery_id) == ("clicked", "download", touch.delivery_id)
    assert event.data == {"url": "https://acme.cn/whitepaper.pdf", "name": "download", "index": 0}


@pytest.mark.parametrize(
    "kind", ["forged", "altered", "open-as-click", "truncated", "non-canonical", "padded"]
)
async def test_a_manipulated_click_token_is_refused_and_records_nothing(
    any_client: httpx.AsyncClient, seed: Seed, signer: TokenSigner, kind: str
) -> None:
    # Given a genuine click token
    touch = seed.touch()
    token = signer.click_token(touch.delivery_id, 0)
    bad = {
        "forged": TokenSigner("another-secret-key-of-at-least-32-chars").click_token(
            touch.delivery_id, 0
        ),
        "altered": token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"),
        "open-as-click": signer.open_token(touch.delivery_id),
        "truncated": token[: len(token) // 2],
        "non-canonical": token[:-1] + _same_bits(token[-1]),  # the unused low bit flipped
        "padded": token + "=",
    }[kind]

    # When someone requests the manipulated one
    response = await any_client.get(f"/c/{bad}")

    # Then it is not found, nothing is recorded and no redirect happens
    assert response.status_code == 404
    assert "location" not in response.headers
    assert seed.event_count() == 0


def _same_bits(char: str) -> str:
    """The base64url character that differs from `char` only in its lowest bit."""
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    return alphabet[alphabet.index(char) ^ 1]


@pytest.mark.parametrize("path", ["/o/{open}", "/c/{click}", "/u/{unsubscribe}"])
async def test_a_signed_token_with_an_id_too_large_to_store_is_not_found(
    any_client: httpx.AsyncClient, seed: Seed, signer: TokenSigner, path: str
) -> None:
    # Given tokens signed with the real key but holding an id no database column holds
    tokens = {
        "open": signer._dumps("open", 2**70),
        "click": signer._dumps("click", [2**70, 0]),
        "unsubscribe": signer._dumps("unsubscribe", [2**70]),
    }

    # When one is requested
    response = await any_client.get(path.format(**tokens))

    # Then it is not found, not an internal error
    assert response.status_code == 404
    assert seed.event_count() == 0


async def test_one_click_unsubscribe_suppresses_the_lead(
    any_client: httpx.AsyncClient, seed: Seed, signer: TokenSigner
) -> None:
    # Given a lead who received a message
    touch = seed.touch()
    token = signer.unsubscribe_token(touch.lead_id, touch.delivery_id)

    # When the mail client sends the RFC 8058 one-click POST
    response = await any_client.post(
        f"/u/{token}",
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    # Then it succeeds, the lead is suppressed, and the unsubscribe names the message
    assert response.status_code == 200
    lead = seed.get_lead(touch.lead_id)
    assert lead is not None and lead.unsubscribed_at == T and lead.suppressed
    [event] = seed.events(touch.lead_id)
    assert (event.type, event.delivery_id, event.data) == (
        "unsubscribed",
        touch.delivery_id,
        {"via": "one-click"},
    )


async def test_the_unsubscribe_page_does_not_unsubscribe_by_itself(
    any_client: httpx.AsyncClient, seed: Seed, signer: TokenSigner
) -> None:
    # Given a lead's unsubscribe link
    lead_id = seed.lead(email="zhang.wei@acme.cn")
    token = signer.unsubscribe_token(lead_id)

    # When a mail scanner (or the reader) opens it
    response = await any_client.get(f"/u/{token}")

    # Then a page with a confirmation button is shown, in UTF-8, and nothing changes
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<form method="post">' in response.text
    assert "退订" in response.text and "z********@acme.cn" in response.text
    assert "zhang.wei" not in response.text
    lead = seed.get_lead(lead_id)
    assert lead is not None and lead.unsubscribed_at is None
    assert seed.event_count() == 0

    # When the reader presses the button
    pressed = await any_client.post(f"/u/{token}", data={"confirm": "yes"})

    # Then they are unsubscribed
    assert pressed.status_code == 200
    assert "You are unsubscribed" in pressed.text
    lead = seed.get_lead(lead_id)
    assert lead is not None and lead.unsubscribed_at is not None
    assert [e.data for e in seed.events(lead_id)] == [{"via": "page"}]


async def test_the_event_api_needs_the_key(any_client: httpx.AsyncClient, seed: Seed) -> None:
    seed.lead(email="ada@acme.cn")
    event = {"lead": {"email": "ada@acme.cn"}, "type": "page_viewed"}

    missing = await any_client.post("/api/events", json=event)
    wrong = await any_client.post("/api/events", json=event, headers={"X-API-Key": "nope"})
    bearer = await any_client.post("/api/events", json=event, headers=AUTH)
    header = await any_client.post("/api/events", json=event, headers={"X-API-Key": API_KEY})

    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "no API key" in missing.json()["errors"][0]["message"]
    assert "wrong API key" in wrong.json()["errors"][0]["message"]
    assert (bearer.status_code, header.status_code) == (200, 200)
    assert seed.event_count() == 2


async def test_the_event_api_records_all_or_nothing(
    any_client: httpx.AsyncClient, seed: Seed, hooks: Hooks
) -> None:
    # Given a lead parked on an event
    touch = seed.touch(seed.lead(email="ada@acme.cn", phone="+8613928714406"))
    good = {"lead": {"email": "ADA@acme.cn"}, "type": "custom", "name": "webinar_attended"}
    by_phone = {"lead": {"phone": "+86 139-2871-4406"}, "type": "page_viewed", "link": "/pricing"}
    unknown = {"lead": {"email": "nobody@acme.cn"}, "type": "opened"}
    bad_type = {"lead": {"id": touch.lead_id}, "type": "visited"}

    # When a list with two bad items is posted
    rejected = await any_client.post(
        "/api/events", json=[good, unknown, by_phone, bad_type], headers=AUTH
    )

    # Then every problem is named by its place, and nothing is recorded
    assert rejected.status_code == 422
    errors = rejected.json()["errors"]
    assert [e["path"] for e in errors] == ["$[3].type"]
    assert "'visited' is not an event type" in errors[0]["message"]
    assert seed.event_count() == 0

    # When the shape is right but a lead is unknown
    rejected = await any_client.post("/api/events", json=[good, unknown, by_phone], headers=AUTH)

    # Then the unknown lead is named, and still nothing is recorded
    assert rejected.status_code == 422
    assert rejected.json()["errors"] == [
        {"path": "$[1].lead.email", "message": "no lead with email nobody@acme.cn"}
    ]
    assert seed.event_count() == 0
    assert hooks.woken == []

    # When the good ones are posted
    accepted = await any_client.post("/api/events", json=[good, by_phone], headers=AUTH)

    # Then both are recorded for the lead and its waiting enrollment is woken once
    assert accepted.status_code == 200
    assert accepted.json()["recorded"] == 2
    names = [(e.type, e.name, e.link) for e in seed.events(touch.lead_id)]
    assert names == [("custom", "webinar_attended", None), ("page_viewed", None, "/pricing")]
    assert hooks.woken == [[touch.enrollment_id]]


async def test_the_lead_api_dedups_by_email_phone_and_messaging_id(
    any_client: httpx.AsyncClient, seed: Seed, hooks: Hooks
) -> None:
    # Given a new lead with a Chinese name
    first = await any_client.post(
        "/api/leads",
        json={
            "email": "Zhang.Wei@Acme.cn",
            "first_name": "伟",
            "last_name": "张",
            "company": "上海云科技有限公司",
            "industry": "saas",
        },
        headers=AUTH,
    )
    assert first.status_code == 200
    [lead_id] = first.json()["created"]

    # When the same person arrives by email (other case), phone and messaging id
    again = await any_client.post(
        "/api/leads",
        json=[
            {"email": "zhang.wei@acme.cn", "phone": "+86 139 2871 4406", "title": "CTO"},
            {"phone": "+86-139-2871-4406", "messaging_id": "wx_o6_zhangwei"},
            {"messaging_id": "wx_o6_zhangwei", "attributes": {"城市": "上海"}},
        ],
        headers=AUTH,
    )

    # Then it is one lead, updated, with every detail and the names intact
    assert again.status_code == 200
    body = again.json()
    assert body == {
        "created": [],
        "updated": [lead_id],
        "skipped": [],
        "merged": [],
        "ids": [lead_id, lead_id, lead_id],
    }
    assert seed.lead_count() == 1
    lead = seed.get_lead(lead_id)
    assert lead is not None
    assert (lead.email, lead.phone, lead.messaging_id) == (
        "zhang.wei@acme.cn",
        "+8613928714406",
        "wx_o6_zhangwei",
    )
    assert (lead.first_name, lead.last_name, lead.company, lead.title) == (
        "伟",
        "张",
        "上海云科技有限公司",
        "CTO",
    )
    assert lead.attributes == {"industry": "saas", "城市": "上海"}
    assert hooks.leads == [(lead_id, True), (lead_id, False)]


async def test_the_lead_api_skips_what_cleaning_rejects(
    any_client: httpx.AsyncClient, seed: Seed
) -> None:
    response = await any_client.post(
        "/api/leads",
        json=[
            {"email": "test@acme.cn"},
            {"email": "li.na@example.com"},
            {"email": "li.na@mailinator.com"},
            {"phone": "13800000000"},
            {"phone": "+86 123 4567 8901"},
            {"phone": "139 9999 9999"},
            {"email": "li.na@acme.cn", "first_name": "测试"},
            {"email": "li.na@acme.cn", "first_name": "娜", "last_name": "李"},
        ],
        headers=AUTH,
    )

    assert response.status_code == 200
    body = response.json()
    reasons = [s["reason"] for s in body["skipped"]]
    assert [s["index"] for s in body["skipped"]] == [0, 1, 2, 3, 4, 5, 6]
    assert reasons[0] == "test lead: email test@acme.cn"
    assert reasons[1] == "test lead: email domain example.com"
    assert reasons[2] == "disposable email domain mailinator.com"
    assert reasons[3].startswith("junk phone 13800000000")
    assert reasons[4].startswith("junk phone +8612345678901")
    assert "identical digits" in reasons[5]
    assert reasons[6] == "test lead: name '测试'"
    assert len(body["created"]) == 1 and body["ids"][:7] == [None] * 7
    assert seed.lead_count() == 1


async def test_the_lead_api_stores_nothing_when_one_item_is_invalid(
    any_client: httpx.AsyncClient, seed: Seed
) -> None:
    response = await any_client.post(
        "/api/leads",
        json=[{"email": "ada@acme.cn"}, {"email": "not an email"}, {"stage": "customer"}],
        headers=AUTH,
    )

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"path": "$[1].email", "message": "'not an email' is not an email address"},
        {"path": "$[2].stage", "message": "is managed by nurture and cannot be set here"},
    ]
    assert seed.lead_count() == 0


async def test_a_lead_matching_two_leads_merges_them_keeping_both_histories(
    any_client: httpx.AsyncClient, seed: Seed, signer: TokenSigner, hooks: Hooks
) -> None:
    # Given lead A known by email and lead B known by phone, each with a history
    a = seed.touch(seed.lead(email="ada@acme.cn", first_name="Ada"))
    b = seed.touch(seed.lead(email=None, phone="+8615061827305", company="Acme 上海"))
    await any_client.get(f"/o/{signer.open_token(a.delivery_id)}")
    await any_client.get(f"/c/{signer.click_token(b.delivery_id, 0)}")
    b_unsubscribe = signer.unsubscribe_token(b.lead_id, b.delivery_id)

    # When a form fill brings A's email and B's phone together
    response = await any_client.post(
        "/api/leads",
        json={"email": "ada@acme.cn", "phone": "+86 150 6182 7305", "tags": ["engaged"]},
        headers=AUTH,
    )

    # Then B is merged into A, and A holds both histories
    assert response.status_code == 200
    assert response.json()["merged"] == [{"from": b.lead_id, "into": a.lead_id}]
    assert response.json()["updated"] == [a.lead_id]
    assert seed.get_lead(b.lead_id) is None
    lead = seed.get_lead(a.lead_id)
    assert lead is not None
    assert (lead.email, lead.phone, lead.first_name, lead.company) == (
        "ada@acme.cn",
        "+8615061827305",
        "Ada",
        "Acme 上海",
    )
    assert [e.type for e in seed.events(a.lead_id)] == ["opened", "clicked"]
    assert {d.id for d in seed.rows(Delivery, a.lead_id)} == {a.delivery_id, b.delivery_id}
    assert {e.id for e in seed.rows(Enrollment, a.lead_id)} == {a.enrollment_id, b.enrollment_id}
    # (both were in "Welcome": B's is exited so the merged lead gets no double sends)
    assert seed.get_enrollment(b.enrollment_id).state == "exited"
    assert [t.tag for t in seed.rows(Tag, a.lead_id)] == ["engaged"]
    assert seed.rows(LifecycleTransition, b.lead_id) == []
    [merge] = seed.rows_of(LeadMerge)
    assert (merge.merged_id, merge.into_id) == (b.lead_id, a.lead_id)
    assert merge.merged["phone"] == "+8615061827305"
    assert lead.attributes["merged_leads"][0]["id"] == b.lead_id
    assert hooks.leads == [(a.lead_id, False)]

    # And B's old unsubscribe link unsubscribes the merged lead
    gone = await any_client.post(f"/u/{b_unsubscribe}", content="List-Unsubscribe=One-Click")
    assert gone.status_code == 200
    lead = seed.get_lead(a.lead_id)
    assert lead is not None and lead.unsubscribed_at is not None
    assert seed.events(a.lead_id)[-1].type == "unsubscribed"


async def test_health(any_client: httpx.AsyncClient) -> None:
    response = await any_client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"ok": True, "database": "ok"}


async def test_unknown_paths_and_methods_are_json_errors(any_client: httpx.AsyncClient) -> None:
    missing = await any_client.get("/nope")
    wrong_method = await any_client.get("/api/events")

    assert missing.status_code == 404
    assert missing.json() == {"errors": [{"path": "/nope", "message": "Not Found"}]}
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"


async def test_concurrent_requests_all_count(
    live: httpx.AsyncClient, seed: Seed, signer: TokenSigner
) -> None:
    # Given one delivery opened by many readers at once, and one lead posted many times at once
    touch = seed.touch()
    token = signer.open_token(touch.delivery_id)
    lead = {"email": "rush@acme.cn", "company": "同时"}

    # When they all arrive together over real HTTP
    opens = [live.get(f"/o/{token}") for _ in range(12)]
    posts = [live.post("/api/leads", json=lead, headers=AUTH) for _ in range(6)]
    responses = await asyncio.gather(*opens, *posts)

    # Then every request succeeds, every open counts, and the lead exists once
    assert [r.status_code for r in responses] == [200] * 18
    assert len(seed.events(touch.lead_id)) == 12
    assert seed.lead_count() == 2


async def test_a_click_replayed_twenty_times_is_kept_twenty_times_but_scored_once(
    any_client: httpx.AsyncClient,
    seed: Seed,
    signer: TokenSigner,
    sessions: sessionmaker[Session],
    clock: VirtualClock,
) -> None:
    # Given the example scoring (+5 per click; MQL at fit A or B and interest >= 50) and a
    # lead who fits (grade A) and got one message
    scoring = Path(__file__).parents[2] / "campaigns" / "scoring.nurture"
    deploy_sources(sessions, {str(scoring): scoring.read_text(encoding="utf-8")}, clock.now())
    lead_id = seed.lead(title="CEO", attributes={"industry": "saas", "employees": 900})
    touch = seed.touch(lead_id)
    token = signer.click_token(touch.delivery_id, 0)

    # When its click link is requested 20 times within a minute
    for _ in range(20):
        assert (await any_client.get(f"/c/{token}")).status_code == 302
        clock.advance(timedelta(seconds=3))

    # Then all 20 clicks are kept, but interest counts one, and the lead is no MQL
    assert [e.type for e in seed.events(lead_id)] == ["clicked"] * 20
    lead = seed.get_lead(lead_id)
    assert lead is not None
    assert (lead.grade, lead.interest, lead.stage) == ("A", 5.0, "lead")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(MqlRecord)) == 0

    # And a click an hour and more after the last one counts again
    clock.advance(REPEAT_WINDOW)
    assert (await any_client.get(f"/c/{token}")).status_code == 302
    lead = seed.get_lead(lead_id)
    assert lead is not None and lead.interest == 10.0
