"""Opens, clicks and unsubscribes in detail: expiry, unknown rows, HEAD, odd stored links."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from nurture.engine.clock import VirtualClock
from nurture.render import TrackedLink
from nurture.tokens import TokenSigner
from nurture.tracking import PIXEL_GIF, create_app, stored_link, stored_links
from tests.tracking.conftest import DAY, Hooks, Seed, T


def test_the_pixel_is_a_transparent_one_by_one_gif() -> None:
    assert PIXEL_GIF.startswith(b"GIF89a\x01\x00\x01\x00")
    assert len(PIXEL_GIF) == 43 and PIXEL_GIF.endswith(b";")
    assert b"!\xf9\x04\x01" in PIXEL_GIF  # graphic control extension: transparent colour set


@pytest.mark.asyncio
async def test_an_expired_open_token_still_gets_the_pixel_but_is_not_recorded(
    client: httpx.AsyncClient, seed: Seed, signer: TokenSigner, clock: VirtualClock
) -> None:
    touch = seed.touch()
    token = signer.open_token(touch.delivery_id)
    clock.advance(181 * DAY)

    response = await client.get(f"/o/{token}")

    assert (response.status_code, response.content) == (200, PIXEL_GIF)
    assert seed.event_count() == 0


@pytest.mark.asyncio
async def test_an_expired_click_token_redirects_without_recording(
    client: httpx.AsyncClient, seed: Seed, signer: TokenSigner, clock: VirtualClock, hooks: Hooks
) -> None:
    touch = seed.touch()
    token = signer.click_token(touch.delivery_id, 0)
    clock.advance(181 * DAY)

    response = await client.get(f"/c/{token}")

    assert response.status_code == 302
    assert response.headers["location"] == "https://acme.cn/whitepaper.pdf"
    assert seed.event_count() == 0
    assert hooks.woken == []


@pytest.mark.asyncio
async def test_an_unnamed_link_is_recorded_by_its_url_and_redirects_encoded(
    client: httpx.AsyncClient, seed: Seed, signer: TokenSigner
) -> None:
    touch = seed.touch()

    response = await client.get(f"/c/{signer.click_token(touch.delivery_id, 1)}")

    assert response.status_code == 302
    assert response.headers["location"] == ("https://acme.cn/%E4%BB%B7%E6%A0%BC?plan=pro&seats=5")
    [event] = seed.events()
    assert event.link == "https://acme.cn/价格?plan=pro&seats=5"


@pytest.mark.asyncio
@pytest.mark.parametrize("index", [2, 3, 99])
async def test_a_link_index_with_no_web_link_is_not_found(
    client: httpx.AsyncClient, seed: Seed, signer: TokenSigner, index: int
) -> None:
    # index 2 holds a javascript: URL, 3 and 99 nothing
    touch = seed.touch()

    response = await client.get(f"/c/{signer.click_token(touch.delivery_id, index)}")

    assert response.status_code == 404
    assert seed.event_count() == 0


@pytest.mark.asyncio
async def test_a_delivery_without_stored_links_has_nothing_to_redirect_to(
    client: httpx.AsyncClient, seed: Seed, signer: TokenSigner
) -> None:
    touch = seed.touch(links=None)

    response = await client.get(f"/c/{signer.click_token(touch.delivery_id, 0)}")

    assert response.status_code == 404
    assert seed.event_count() == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["o", "c"])
async def test_a_genuine_token_of_an_unknown_delivery_is_not_found(
    client: httpx.AsyncClient, seed: Seed, signer: TokenSigner, path: str
) -> None:
    seed.touch()
    token = signer.open_token(9999) if path == "o" else signer.click_token(9999, 0)

    response = await client.get(f"/{path}/{token}")

    assert response.status_code == 404
    assert seed.event_count() == 0


@pytest.mark.asyncio
async def test_head_requests_answer_without_recording(
    client: httpx.AsyncClient, seed: Seed, signer: TokenSigner
) -> None:
    touch = seed.touch()

    pixel = await client.head(f"/o/{signer.open_token(touch.delivery_id)}")
    click = await client.head(f"/c/{signer.click_token(touch.delivery_id, 0)}")

    assert pixel.status_code == 200
    assert (click.status_code, click.headers["location"]) == (302, "https://acme.cn/whitepaper.pdf")
    assert seed.event_count() == 0


@pytest.mark.asyncio
async def test_an_open_wakes_only_enrollments_waiting_for_an_event(
    client: httpx.AsyncClient, seed: Seed, signer: TokenSigner, hooks: Hooks
) -> None:
    # Given the lead's parked enrollment, a plain `wait 3 days`, an active one and one overdue
    touch = seed.touch()
    plain = seed.enrollment(touch.lead_id, waiting=False, campaign="Drip")
    active = seed.enrollment(touch.lead_id, state="active", waiting=False, campaign="Other")
    overdue = seed.enrollment(touch.lead_id, due=T - DAY, campaign="Late")

    await client.get(f"/o/{signer.open_token(touch.delivery_id)}")

    assert hooks.woken == [[touch.enrollment_id, overdue]]
    assert seed.get_enrollment(touch.enrollment_id).next_run_at == T
    assert seed.get_enrollment(overdue).next_run_at == T - DAY  # never moved later
    assert seed.get_enrollment(plain).next_run_at == T + 3 * DAY
    assert seed.get_enrollment(active).next_run_at == T + 3 * DAY


@pytest.mark.asyncio
async def test_a_failing_wake_hook_does_not_fail_the_open(
    sessions: sessionmaker[Session], seed: Seed, signer: TokenSigner, clock: VirtualClock
) -> None:
    def broken(ids: list[int]) -> None:
        raise RuntimeError("broker down")

    app = create_app(sessions, signer, api_key=None, on_wake=broken, clock=clock)
    touch = seed.touch()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t.test"
    ) as client:
        response = await client.get(f"/o/{signer.open_token(touch.delivery_id)}")

    assert response.status_code == 200
    assert [e.type for e in seed.events()] == ["opened"]


# ---------------------------------------------------------------- unsubscribe


@pytest.mark.asyncio
async def test_unsubscribing_twice_records_one_event(
    client: httpx.AsyncClient, seed: Seed, signer: TokenSigner
) -> None:
    lead_id = seed.lead()
    token = signer.unsubscribe_token(lead_id)

    first = await client.post(f"/u/{token}", content="List-Unsubscribe=One-Click")
    second = await client.post(f"/u/{token}", content="List-Unsubscribe=One-Click")
    page = await client.get(f"/u/{token}")

    assert (first.status_code, second.status_code, page.status_code) == (200, 200, 200)
    assert [e.type for e in seed.events(lead_id)] == ["unsubscribed"]
    assert "You are unsubscribed" in page.text and "<form" not in page.text


@pytest.mark.asyncio
async def test_an_unsubscribe_link_never_expires(
    client: httpx.AsyncClient, seed: Seed, signer: TokenSigner, clock: VirtualClock
) -> None:
    lead_id = seed.lead()
    token = signer.unsubscribe_token(lead_id)
    clock.advance(3 * 365 * DAY)

    response = await client.post(f"/u/{token}")

    assert response.status_code == 200
    lead = seed.get_lead(lead_id)
    assert lead is not None and lead.unsubscribed_at == clock.now()


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_damaged_unsubscribe_link_shows_a_page_and_changes_nothing(
    client: httpx.AsyncClient, seed: Seed, signer: TokenSigner, method: str
) -> None:
    lead_id = seed.lead()
    token = signer.unsubscribe_token(lead_id)

    response = await client.request(method, f"/u/{token[:-4]}")

    assert response.status_code == 404
    assert "链接无效" in response.text
    assert seed.event_count() == 0


@pytest.mark.asyncio
async def test_an_unsubscribe_link_of_a_lead_that_is_gone_confirms_and_records_nothing(
    client: httpx.AsyncClient, seed: Seed, signer: TokenSigner
) -> None:
    response = await client.post(f"/u/{signer.unsubscribe_token(4242)}")

    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    assert seed.event_count() == 0


@pytest.mark.asyncio
async def test_the_unsubscribe_page_escapes_what_it_shows(
    client: httpx.AsyncClient, seed: Seed, signer: TokenSigner
) -> None:
    lead_id = seed.lead(email="<script>x@acme.cn")

    response = await client.get(f"/u/{signer.unsubscribe_token(lead_id)}")

    assert "<script>" not in response.text and "&lt;" in response.text


# ---------------------------------------------------------------- stored links


def test_stored_links_round_trip() -> None:
    links = (TrackedLink(0, "download", "https://a.cn/x"), TrackedLink(1, None, "http://a.cn/y"))

    stored = stored_links(links)

    assert stored == [
        {"index": 0, "name": "download", "url": "https://a.cn/x"},
        {"index": 1, "name": None, "url": "http://a.cn/y"},
    ]
    assert [stored_link(stored, i) for i in (0, 1, 2)] == [*links, None]


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "https://a.cn",
        [{"index": 0, "url": "mailto:x@a.cn"}],
        [{"index": 0, "url": "https://"}],
        [{"index": 0, "url": 5}],
        [{"index": "0", "url": "https://a.cn"}],
        ["https://a.cn"],
    ],
)
def test_odd_stored_links_are_not_redirected_to(stored: object) -> None:
    assert stored_link(stored, 0) is None
