"""Signing in to the console: every page behind it, the session cookie's flags, CSRF on
every form, lock-out, log-out, and no redirect off the site after signing in."""

from __future__ import annotations

import httpx
import pytest

from tests.console.conftest import PASSWORD, World, csrf_of, form, sign_in

pytestmark = pytest.mark.asyncio

PAGES = [
    "/console/inbox",
    "/console/leads/1",
    "/console/leads/1/touches/1",
    "/console/deliveries",
    "/console/segments",
    "/console/segments.csv",
    "/console/funnel",
    "/console/funnel.json",
    "/console/campaigns",
    "/console/campaigns/1",
    "/console/campaigns/1/versions/1.svg",
    "/console/users",
]
FORMS = [
    "/console/leads/1/accept",
    "/console/leads/1/return",
    "/console/leads/1/stage",
    "/console/users",
    "/console/users/1/remove",
    "/console/deliveries/1/release",
    "/console/sign-out",
]


async def test_the_root_and_the_console_lead_to_the_sign_in_page(
    client: httpx.AsyncClient,
) -> None:
    root = await client.get("/")
    assert (root.status_code, root.headers["location"]) == (303, "/console/")
    home = await client.get("/console/", follow_redirects=True)
    assert home.url.path == "/console/sign-in"
    assert "<h1>Sign in</h1>" in home.text


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_needs_a_signed_in_user(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path + "?x=1")

    assert response.status_code == 303
    assert response.headers["location"] == f"/console/sign-in?next={path}%3Fx%3D1"


@pytest.mark.parametrize("path", FORMS)
async def test_a_form_without_the_csrf_token_is_403(client: httpx.AsyncClient, path: str) -> None:
    await sign_in(client, "wang.fang@t.io")
    assert (await client.post(path, data={"reason": "x"})).status_code == 403
    assert (await client.post(path, data={"csrf": "forged"})).status_code == 403


async def test_signing_in_without_the_forms_token_is_403(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/console/sign-in", data={"email": "admin@t.io", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert "reload the page" in response.text


async def test_the_session_cookie_is_http_only_same_site_and_signed(
    client: httpx.AsyncClient,
) -> None:
    response = await sign_in(client, "admin@t.io")

    assert (response.status_code, response.headers["location"]) == (303, "/console/inbox")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/console" in cookie
    assert "secure" not in cookie  # served over plain http here
    # a tampered cookie is no session
    value = client.cookies["nurture_console"]
    client.cookies.set("nurture_console", value[:-2] + "xx", path="/console")
    assert (await client.get("/console/inbox")).status_code == 303


async def test_over_https_the_cookie_is_secure(world: World) -> None:
    transport = httpx.ASGITransport(app=world.app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as c:
        page = await c.get("/console/sign-in")
        assert "secure" in page.headers["set-cookie"].lower()
        response = await c.post(
            "/console/sign-in",
            data={"csrf": csrf_of(page.text), "email": "admin@t.io", "password": PASSWORD},
        )
        assert "secure" in response.headers["set-cookie"].lower()


async def test_a_wrong_password_says_so_and_three_lock_the_user(
    client: httpx.AsyncClient, world: World
) -> None:
    for _ in range(2):
        wrong = await sign_in(client, "admin@t.io", "not the password")
        assert wrong.status_code == 401
        assert "Wrong email address or password." in wrong.text
    locked = await sign_in(client, "admin@t.io", "not the password")
    assert "locked until 2026-03-02 10:10 UTC" in locked.text

    refused = await sign_in(client, "admin@t.io")  # the right password, but locked
    assert (refused.status_code, "locked until" in refused.text) == (401, True)

    world.clock.advance(__import__("datetime").timedelta(minutes=11))
    assert (await sign_in(client, "admin@t.io")).status_code == 303


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "/console/../evil",
        "javascript:alert(1)",
        "/elsewhere",
        "/console//evil.example",
    ],
)
async def test_no_redirect_off_the_console_after_signing_in(
    client: httpx.AsyncClient, target: str
) -> None:
    page = await client.get("/console/sign-in", params={"next": target})
    assert target not in page.text
    response = await client.post(
        "/console/sign-in",
        data={
            "csrf": csrf_of(page.text),
            "email": "admin@t.io",
            "password": PASSWORD,
            "next": target,
        },
    )
    assert (response.status_code, response.headers["location"]) == (303, "/console/inbox")


async def test_after_signing_in_you_go_where_you_were_going(client: httpx.AsyncClient) -> None:
    first = await client.get("/console/users")
    page = await client.get(first.headers["location"])
    response = await client.post(
        "/console/sign-in",
        data={
            "csrf": csrf_of(page.text),
            "email": "admin@t.io",
            "password": PASSWORD,
            "next": "/console/users",
        },
    )
    assert response.headers["location"] == "/console/users"


async def test_signing_in_gives_a_new_csrf_token_and_signing_out_ends_the_session(
    client: httpx.AsyncClient,
) -> None:
    before = csrf_of((await client.get("/console/sign-in")).text)
    await sign_in(client, "mia@t.io")
    inbox = await client.get("/console/inbox")
    assert inbox.status_code == 200 and csrf_of(inbox.text) != before

    out = await form(client, inbox.text, "/console/sign-out")

    assert (out.status_code, out.headers["location"]) == (303, "/console/sign-in")
    assert "nurture_console" not in client.cookies
    assert (await client.get("/console/inbox")).status_code == 303


async def test_a_removed_user_is_signed_out_at_their_next_request(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, "ann@t.io")
    assert (await client.get("/console/inbox")).status_code == 200
    from nurture.console.users import remove_user

    with world.sessions() as session:
        remove_user(session, "ann@t.io")
        session.commit()
    assert (await client.get("/console/inbox")).status_code == 303


async def test_pages_forbid_framing_and_foreign_scripts(client: httpx.AsyncClient) -> None:
    page = await client.get("/console/sign-in")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "http" not in page.text.split("<main>")[0].replace('"width=device-width', "")
