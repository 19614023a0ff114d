"""A console over a database with a deployed routing, two MQLs and a user of each role.

``world`` builds it on SQLite and on PostgreSQL (``pg_world`` on PostgreSQL alone): the
routing of the handoff tests with return reasons, two leads of team east qualified at `T`
(each goes to its round-robin owner), and users: both east members as sales,
an admin, a marketer and an analyst, all with `PASSWORD`. The console's clock
stands at `NOW`, an hour after the MQLs. ``client`` drives the whole service
(the tracking app with the console mounted) in-process over httpx.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from argon2 import PasswordHasher, profiles
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from nurture import db
from nurture.console import Lockout, create_console, users
from nurture.console.users import add_user
from nurture.engine.clock import VirtualClock
from nurture.models import Definition, Lead
from nurture.tokens import TokenSigner
from nurture.tracking import create_app
from tests.handoff.test_handoff_store import RULES, east_lead, qualify
from tests.handoff.test_route import deployed
from tests.store.test_scoring_store import MODEL

KEY = "console-test-secret-0123456789abcdef"
PASSWORD = "correct horse battery"
T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = T + timedelta(hours=1)
REASONS = ["not a fit", "no budget", "wrong contact"]
ROUTING = {**(RULES.routing or {}), "return_reasons": REASONS}
LOCKOUT = Lockout(attempts=3, seconds=600)


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """argon2 with its `CHEAPEST` profile (argon2-cffi's own, for tests): the real hashing
    and verification, without 64 MiB and a second per password on a busy test machine.
    A test marked ``real_hashes`` keeps the production parameters."""
    if request.node.get_closest_marker("real_hashes"):
        return
    hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
    monkeypatch.setattr(users, "_HASHER", hasher)
    monkeypatch.setattr(users, "_DUMMY", hasher.hash("not anybody's password"))


@dataclass
class World:
    """The database and service of a test."""

    engine: Engine
    sessions: sessionmaker[Session]
    app: object
    clock: VirtualClock
    leads: dict[str, Lead] = field(default_factory=dict)
    """The two MQL leads by email, detached (their ids and owners at the start)."""

    def owner(self, email: str) -> str:
        owner = self.leads[email].owner
        assert owner is not None
        return owner

    def lead(self, email: str) -> Lead:
        """The lead as the database holds it now."""
        with self.sessions() as session:
            found = session.scalars(select(Lead).where(Lead.email == email)).one()
            session.expunge(found)
            return found


def build(url: str) -> World:
    db.upgrade(url)
    engine = db.make_engine(url)
    sessions = db.session_factory(engine)
    clock = VirtualClock(NOW)
    world = World(engine, sessions, None, clock)
    with sessions() as session:
        session.add(deployed(ROUTING))
        session.add(
            Definition(
                kind="scoring",
                name="Test model",
                version=1,
                content_hash="0" * 64,
                body=MODEL,
                source="scoring",
            )
        )
        for email, first, company in (
            ("ada@corp.com", "Ada", "Analytical Engines"),
            ("li@corp.cn", "Li", "华夏"),
        ):
            lead = east_lead(session, email)
            lead.first_name, lead.company = first, company
            assert qualify(session, lead, RULES, T) is not None
        for email, role in (
            ("li.na@t.io", "sales"),
            ("wang.fang@t.io", "sales"),
            ("admin@t.io", "admin"),
            ("mia@t.io", "marketer"),
            ("ann@t.io", "analyst"),
        ):
            add_user(session, email, role, PASSWORD, ROUTING)
        session.commit()
        for lead in session.scalars(select(Lead)):
            session.expunge(lead)
            world.leads[str(lead.email)] = lead
    console = create_console(sessions, [KEY], clock=clock, lockout=LOCKOUT)
    world.app = create_app(sessions, TokenSigner(KEY), api_key=None, console=console)
    return world


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    """The world on each kind of database."""
    url: str = request.getfixturevalue(
        {"sqlite": "sqlite_url", "postgresql": "pg_url"}[request.param]
    )
    built = build(url)
    yield built
    built.engine.dispose()


@pytest.fixture
def pg_world(pg_url: str) -> Iterator[World]:
    built = build(pg_url)
    yield built
    built.engine.dispose()


@pytest_asyncio.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=world.app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as c:
        yield c


def csrf_of(page: str) -> str:
    """The CSRF token of the first form on `page`."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    """Sign in through the form, as a browser does; the response to the POST."""
    page = await client.get("/console/sign-in")
    return await client.post(
        "/console/sign-in",
        data={"csrf": csrf_of(page.text), "email": email, "password": password},
    )


async def form(client: httpx.AsyncClient, page: str, action: str, **fields: str) -> httpx.Response:
    """POST a form of the console with the CSRF token of the page it came from."""
    return await client.post(action, data={"csrf": csrf_of(page), **fields})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real_hashes: argon2 with its production parameters")
