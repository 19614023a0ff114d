"""Invitations: `nurture users invite` and the users page email a signed, single-use,
expiring link; the invited choose their password at /console/welcome/<token> and are
signed in. The emails go through the outbox channel, read back as .eml files."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import delete, select
from typer.testing import CliRunner

from nurture.cli import app as cli
from nurture.config import Settings
from nurture.console import create_console
from nurture.console.invite_views import said
from nurture.console.invites import Invited, Mailer
from nurture.console.users import NO_PASSWORD
from nurture.models import User
from nurture.runtime.sending import send_email_now
from nurture.tokens import TokenSigner
from nurture.tracking import create_app
from tests.console.conftest import KEY, LOCKOUT, PASSWORD, World, csrf_of, form, sign_in

pytestmark = pytest.mark.asyncio

BASE = "http://console.test"
NEW_PASSWORD = "my own choice, 11+"
LINK = re.compile(re.escape(BASE) + r"(/console/welcome/[A-Za-z0-9_.-]+)")
runner = CliRunner()


class AheadClock:
    """The system clock (the command line signs with it), moved ahead when told."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.ahead

    def advance(self, delta: timedelta) -> None:
        self.ahead += delta


class Invites:
    """The outbox the invitations go to, the console's clock and the command line."""

    def __init__(self, world: World, outbox: Path, clock: AheadClock) -> None:
        self.world, self.outbox, self.clock = world, outbox, clock

    def emails(self) -> list[email.message.EmailMessage]:
        """Every invitation written so far, oldest first."""
        files = sorted(self.outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
        return [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for p in files
        ]

    def link_to(self, address: str) -> str:
        """The path of the newest invitation link sent to `address`."""
        sent = [m for m in self.emails() if m["To"] == address]
        assert sent, f"no invitation to {address}"
        body = sent[-1].get_body(preferencelist=("plain",))
        assert body is not None
        found = LINK.search(body.get_content())
        assert found is not None, body.get_content()
        return found.group(1)

    async def cli(self, *args: str) -> tuple[int, str]:
        """``nurture users ARGS`` (in a thread: the command runs its own event loop)."""
        result = await asyncio.to_thread(runner.invoke, cli, ["users", *args])
        assert result.exception is None or isinstance(result.exception, SystemExit)
        return result.exit_code, result.stdout + result.stderr

    def user(self, address: str) -> User | None:
        with self.world.sessions() as session:
            return session.scalars(select(User).where(User.email == address)).one_or_none()


@pytest.fixture
def invites(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invites:
    """The world's console with invitations into an outbox, on the system clock (which the
    command line signs with), and the command line on the same database."""
    outbox = tmp_path / "outbox"
    url = str(world.engine.url.render_as_string(hide_password=False))
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "DATABASE_URL": url,
        "OUTBOX": str(outbox),
        "BASE_URL": BASE,
        "SECRET_KEY": KEY,
        "SENDER": "Tidewater <hello@t.io>",
    }.items():
        monkeypatch.setenv(f"NURTURE_{name}", value)
    settings = Settings.load()
    clock = AheadClock()
    mailer = Mailer(BASE, "t.io", lambda m: send_email_now(settings, m), timedelta(days=7))
    console = create_console(world.sessions, [KEY], clock=clock, lockout=LOCKOUT, mailer=mailer)
    world.app = create_app(world.sessions, TokenSigner(KEY), api_key=None, console=console)
    with world.sessions() as session:  # li.na, a routing member, has no account yet
        session.execute(delete(User).where(User.email == "li.na@t.io"))
        session.commit()
    return Invites(world, outbox, clock)


@pytest_asyncio.fixture
async def client(invites: Invites) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=invites.world.app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        yield c


async def choose(
    client: httpx.AsyncClient, link: str, password: str = NEW_PASSWORD, again: str | None = None
) -> httpx.Response:
    """Open the invitation's page and send its form, as a browser does."""
    page = await client.get(link)
    assert page.status_code == 200, page.text
    token = link.rsplit("/", 1)[1]
    return await client.post(
        "/console/welcome",
        data={
            "csrf": csrf_of(page.text),
            "token": token,
            "password": password,
            "again": password if again is None else again,
        },
    )


async def test_an_invited_member_chooses_a_password_and_sees_only_their_leads(
    client: httpx.AsyncClient, invites: Invites
) -> None:
    # Given li.na, a routing member with a lead and no account, invited from the command line
    code, out = await invites.cli("invite", "LI.NA@t.io")
    assert code == 0, out
    assert re.search(r"li\.na@t\.io\s+sales\s+invited\s+sent", out), out
    user = invites.user("li.na@t.io")
    assert user is not None and user.password_hash == NO_PASSWORD
    assert user.invite_nonce is not None

    # Then her email greets her by her routing name and carries the link
    (sent,) = invites.emails()
    assert (sent["To"], sent["Subject"]) == ("li.na@t.io", "You are invited to the nurture console")
    text = sent.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("Hello 李娜,") and "as sales" in text
    link = invites.link_to("li.na@t.io")

    # When she opens it and chooses a password
    page = await client.get(link)
    assert page.status_code == 200 and "li.na@t.io" in page.text
    done = await choose(client, link)

    # Then she is signed in, in her inbox, with her own lead and not her colleague's
    assert (done.status_code, done.headers["location"]) == (303, "/console/inbox")
    inbox = await client.get("/console/inbox")
    assert "li.na@t.io · sales" in inbox.text and "your password is set" in inbox.text
    mine = invites.world.leads["ada@corp.com"]
    theirs = invites.world.leads["li@corp.cn"]
    if mine.owner != "li.na@t.io":
        mine, theirs = theirs, mine
    assert mine.owner == "li.na@t.io" and theirs.owner == "wang.fang@t.io"
    assert (await client.get(f"/console/leads/{mine.id}")).status_code == 200
    assert (await client.get(f"/console/leads/{theirs.id}")).status_code == 404

    # And the invitation is closed: the password works, the link does not any more
    user = invites.user("li.na@t.io")
    assert user is not None and user.invite_nonce is None
    assert user.password_hash.startswith("$argon2id$")
    again = await client.get(link)
    assert (again.status_code, "has been used" in again.text) == (410, True)
    await client.post("/console/sign-out", data={"csrf": csrf_of(inbox.text)})
    assert (await sign_in(client, "li.na@t.io", NEW_PASSWORD)).status_code == 303


async def test_routing_invites_each_member_without_an_account_once(
    client: httpx.AsyncClient, invites: Invites
) -> None:
    code, out = await invites.cli("invite", "--routing")
    assert code == 0, out
    for address in ("li.na@t.io", "amy@t.io", "tom@t.io", "boss@t.io"):
        assert re.search(re.escape(address) + r"\s+sales\s+invited\s+sent", out), out
    assert re.search(r"wang\.fang@t\.io\s+sales\s+has an account\s+not sent", out), out
    assert len(invites.emails()) == 4
    first = invites.link_to("amy@t.io")

    # Run again: nobody gets a second email unless named
    code, out = await invites.cli("invite", "--routing", "amy@t.io")
    assert code == 0, out
    assert re.search(r"tom@t\.io\s+sales\s+invite pending\s+not sent", out), out
    assert re.search(r"amy@t\.io\s+sales\s+invited again\s+sent", out), out
    assert len(invites.emails()) == 5

    # The newer invitation replaces the older: its link no longer works
    old = await client.get(first)
    assert (old.status_code, "replaced by a newer one" in old.text) == (410, True)
    assert (await choose(client, invites.link_to("amy@t.io"))).status_code == 303


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["nobody@t.io"], 1, "give --role (admin, marketer, sales, analyst)"),
        (["amy@t.io", "not-an-address", "--role", "admin"], 1, "'not-an-address' is not an"),
        (["x@t.io", "--role", "boss"], 1, "no role 'boss'"),
        ([], 2, "name the addresses to invite, or give --routing"),
    ],
)
async def test_a_bad_invitation_is_refused_and_nothing_changes(
    invites: Invites, args: list[str], code: int, said: str
) -> None:
    done, out = await invites.cli("invite", *args)
    assert (done, said in out) == (code, True), out
    assert invites.user("amy@t.io") is None and invites.user("x@t.io") is None
    assert invites.emails() == []


async def test_an_email_that_cannot_be_sent_leaves_the_invitation_pending(
    invites: Invites,
) -> None:
    # Given an outbox "folder" that is a file: the email channel cannot write
    invites.outbox.write_text("not a folder")
    code, out = await invites.cli("invite", "amy@t.io")
    assert code == 1
    assert "amy@t.io" in out and "misconfigured" in out
    assert "1 invitation email(s) not sent; run the command again" in out
    user = invites.user("amy@t.io")
    assert user is not None and user.invite_nonce is not None  # invite again to send it
    code, out = await invites.cli("list", "--json")
    assert code == 0 and '"invitation": "invite pending"' in out


async def test_a_forged_or_expired_link_changes_nothing(
    client: httpx.AsyncClient, invites: Invites
) -> None:
    assert (await invites.cli("invite", "amy@t.io"))[0] == 0
    link = invites.link_to("amy@t.io")
    token = link.rsplit("/", 1)[1]
    user_id = invites.user("amy@t.io").id  # type: ignore[union-attr]
    stranger = TokenSigner("another-key-0123456789abcdef0123")
    forged = [
        "/console/welcome/" + stranger.invite_token(user_id, "guess"),
        "/console/welcome/" + token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        "/console/welcome/" + "x" * 500,
        "/console/welcome/" + TokenSigner(KEY).answer_token(user_id),  # another purpose
    ]
    for path in forged:
        page = await client.get(path)
        assert (page.status_code, "not a link nurture made" in page.text) == (400, True), path

    # A week and a minute later the link has expired, for the page and for its form alike
    page = await client.get(link)
    invites.clock.advance(timedelta(days=7, minutes=1))
    late = await client.get(link)
    assert (late.status_code, "has expired" in late.text) == (410, True)
    posted = await client.post(
        "/console/welcome",
        data={
            "csrf": csrf_of(page.text),
            "token": token,
            "password": NEW_PASSWORD,
            "again": NEW_PASSWORD,
        },
    )
    assert (posted.status_code, "has expired" in posted.text) == (410, True)
    user = invites.user("amy@t.io")
    assert user is not None and user.password_hash == NO_PASSWORD and user.invite_nonce


async def test_a_bad_password_shows_the_form_again_and_changes_nothing(
    client: httpx.AsyncClient, invites: Invites
) -> None:
    assert (await invites.cli("invite", "amy@t.io"))[0] == 0
    link = invites.link_to("amy@t.io")
    short = await choose(client, link, "short")
    assert (short.status_code, "at least 10 characters" in short.text) == (400, True)
    assert 'name="token"' in short.text  # the form again, to try once more
    differ = await choose(client, link, NEW_PASSWORD, again=NEW_PASSWORD + "!")
    assert (differ.status_code, "The two passwords differ." in differ.text) == (400, True)
    user = invites.user("amy@t.io")
    assert user is not None and user.password_hash == NO_PASSWORD and user.invite_nonce
    # and nobody is signed in by a failed attempt
    assert (await client.get("/console/inbox")).status_code == 303


async def test_an_invited_user_cannot_sign_in_before_choosing_a_password(
    client: httpx.AsyncClient, invites: Invites
) -> None:
    assert (await invites.cli("invite", "amy@t.io"))[0] == 0
    for password in (NO_PASSWORD, "", PASSWORD):
        refused = await sign_in(client, "amy@t.io", password)
        assert (refused.status_code, "Wrong email address or password." in refused.text) == (
            401,
            True,
        )


async def test_forms_without_the_csrf_token_are_refused(
    client: httpx.AsyncClient, invites: Invites
) -> None:
    assert (await invites.cli("invite", "amy@t.io"))[0] == 0
    link = invites.link_to("amy@t.io")
    await client.get(link)  # a session with its CSRF token
    token = link.rsplit("/", 1)[1]
    fields = {"token": token, "password": NEW_PASSWORD, "again": NEW_PASSWORD}
    assert (await client.post("/console/welcome", data=fields)).status_code == 403
    wrong = await client.post("/console/welcome", data={**fields, "csrf": "guess"})
    assert wrong.status_code == 403

    await sign_in(client, "admin@t.io")
    invited = await client.post("/console/users/invite", data={"email": "new@t.io"})
    assert invited.status_code == 403
    user = invites.user("amy@t.io")
    assert user is not None and user.password_hash == NO_PASSWORD
    assert invites.user("new@t.io") is None and len(invites.emails()) == 1


@pytest.mark.parametrize("who", ["mia@t.io", "ann@t.io", "wang.fang@t.io"])
async def test_only_admins_invite(client: httpx.AsyncClient, invites: Invites, who: str) -> None:
    await sign_in(client, who)
    inbox = (await client.get("/console/inbox")).text
    for fields in ({"email": "new@t.io", "role": "admin"}, {"routing": "yes"}):
        refused = await form(client, inbox, "/console/users/invite", **fields)
        assert (refused.status_code, "Only admins manage users." in refused.text) == (403, True)
    assert invites.user("new@t.io") is None and invites.user("amy@t.io") is None
    assert invites.emails() == []


async def test_an_admin_invites_from_the_users_page(
    client: httpx.AsyncClient, invites: Invites
) -> None:
    await sign_in(client, "admin@t.io")
    page = (await client.get("/console/users")).text
    assert "Team members of the routing without an account: li.na@t.io, amy@t.io" in page

    # an address and a role
    bad = await form(client, page, "/console/users/invite", email="New@t.io", role="boss")
    assert (bad.status_code, "No role &#39;boss&#39;" in bad.text) == (400, True)
    stranger = await form(client, page, "/console/users/invite", email="x@else.io", role="")
    assert stranger.status_code == 400
    assert "Choose a role (admin, marketer, sales, analyst): x@else.io is no routing" in (
        stranger.text
    )
    done = await form(client, page, "/console/users/invite", email="New@t.io", role="analyst")
    assert (done.status_code, done.headers["location"]) == (303, "/console/users")
    page = (await client.get("/console/users")).text
    assert "Invited new@t.io (analyst): email sent." in page
    assert re.search(r"<td>new@t\.io</td><td>analyst</td>.*?invite pending", page, re.S)
    assert invites.link_to("new@t.io")

    # every routing member without an account, as sales
    await form(client, page, "/console/users/invite", routing="yes")
    page = (await client.get("/console/users")).text
    assert "Invited amy@t.io (sales): email sent." in page
    assert "wang.fang@t.io: has an account, nothing sent." in page
    assert "without an account" not in page
    assert {m["To"] for m in invites.emails()} == {
        "new@t.io",
        "li.na@t.io",
        "amy@t.io",
        "tom@t.io",
        "boss@t.io",
    }

    # a week later the invitation shows as expired, and can be sent again
    invites.clock.advance(timedelta(days=8))
    page = (await client.get("/console/users")).text
    assert re.search(r"<td>amy@t\.io</td>.*?invite expired", page, re.S)
    await form(client, page, "/console/users/invite", email="amy@t.io")
    page = (await client.get("/console/users")).text
    assert "Invited again amy@t.io (sales): email sent." in page
    assert (await choose(client, invites.link_to("amy@t.io"))).status_code == 303


async def test_the_line_after_inviting_many_counts_them_and_stays_short() -> None:
    done = [Invited(f"rep{n}@t.io", "sales", "invited", n, "nonce", sent="sent") for n in range(40)]
    done += [Invited("old@t.io", "sales", "has an account", 41)]
    done += [
        Invited(f"late{n}@t.io", "sales", "invited", 50 + n, "nonce", sent="x" * 999)
        for n in range(5)
    ]
    line = said(done)
    assert line.startswith("45 invited; 1 has an account. Emails not sent to late0@t.io, ")
    assert "late2@t.io and 2 more" in line and len(line) < 500
    one = said(done[:1] + done[-1:])
    assert one.startswith("Invited rep0@t.io (sales): email sent. Invited late4@t.io (sales), ")
