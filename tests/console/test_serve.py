"""`nurture serve` serves the console: a user added with `nurture users add` signs in to the
process over HTTP, with the lock-out configured from the environment."""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from nurture import db
from tests.console.conftest import PASSWORD
from tests.live import free_port, healthy, nurture_process, wait_for

NURTURE = str(Path(sys.executable).with_name("nurture"))


def test_nurture_serve_serves_the_console(sqlite_url: str, tmp_path: Path) -> None:
    db.upgrade(sqlite_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    env.update(NURTURE_DATABASE_URL=sqlite_url, NURTURE_CONSOLE_LOCKOUT_ATTEMPTS="2")
    added = subprocess.run(
        [NURTURE, "users", "add", "mia@t.io", "--role", "marketer", "--password-stdin"],
        input=PASSWORD,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = ["serve", "--port", str(port), "--log-level", "warning"]

    with nurture_process(serve, env, tmp_path / "serve.log", cwd=tmp_path):
        wait_for("nurture serve", lambda: healthy(base), log=tmp_path / "serve.log")
        with httpx.Client(base_url=base, follow_redirects=True) as client:
            page = client.get("/")
            assert page.url.path == "/console/sign-in" and "<h1>Sign in</h1>" in page.text
            token = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert token is not None

            def sign_in(password: str) -> httpx.Response:
                return client.post(
                    "/console/sign-in",
                    data={"csrf": token.group(1), "email": "mia@t.io", "password": password},
                )

            inbox = sign_in(PASSWORD)
            assert inbox.url.path == "/console/inbox" and "Open MQLs" in inbox.text
            assert "mia@t.io · marketer" in inbox.text

            client.cookies.clear()
            page = client.get("/console/sign-in")
            token = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert token is not None
            assert "Wrong email" in sign_in("wrong password").text
            assert "locked until" in sign_in("wrong password").text  # 2 attempts, as set


def test_an_admin_invites_through_nurture_serve_and_the_link_signs_them_in(
    sqlite_url: str, tmp_path: Path
) -> None:
    # Given nurture serve with its email going to the outbox folder (the embedded default)
    db.upgrade(sqlite_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    env.update(NURTURE_DATABASE_URL=sqlite_url, NURTURE_BASE_URL=base)
    added = subprocess.run(
        [NURTURE, "users", "add", "admin@t.io", "--role", "admin", "--password-stdin"],
        input=PASSWORD,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    serve = ["serve", "--port", str(port), "--log-level", "warning"]

    def csrf(page: str) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found is not None
        return found.group(1)

    with nurture_process(serve, env, tmp_path / "serve.log", cwd=tmp_path):
        wait_for("nurture serve", lambda: healthy(base), log=tmp_path / "serve.log")
        with httpx.Client(base_url=base, follow_redirects=True) as admin:
            page = admin.get("/console/sign-in").text
            data = {"csrf": csrf(page), "email": "admin@t.io", "password": PASSWORD}
            admin.post("/console/sign-in", data=data)
            users = admin.get("/console/users")
            invited = admin.post(
                "/console/users/invite",
                data={"csrf": csrf(users.text), "email": "ann@t.io", "role": "analyst"},
            )
            assert "Invited ann@t.io (analyst): email sent." in invited.text

        # Then the email is in the outbox, and its link lets ann choose a password
        (eml,) = (tmp_path / "outbox").glob("*.eml")
        sent = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        text = sent.get_body(preferencelist=("plain",)).get_content()  # type: ignore[attr-defined]
        link = re.search(re.escape(base) + r"(/console/welcome/\S+)", text)
        assert link is not None
        with httpx.Client(base_url=base, follow_redirects=True) as ann:
            page = ann.get(link.group(1))
            assert "Choose a password for <b>ann@t.io</b>" in page.text
            token = link.group(1).rsplit("/", 1)[1]
            fields = {"token": token, "password": "ann's own pw", "again": "ann's own pw"}
            inbox = ann.post("/console/welcome", data={"csrf": csrf(page.text), **fields})
            assert inbox.url.path == "/console/inbox" and "ann@t.io · analyst" in inbox.text
