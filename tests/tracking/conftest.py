"""Fixtures for the tracking service: the app over each database, in-process and under uvicorn.

``client`` talks to the app in-process (``httpx.ASGITransport``); ``live``
talks to the same app served by a real uvicorn on 127.0.0.1 (an ephemeral
port, in a thread, stopped after the test); ``any_client`` is each of the
two in turn. ``seed`` writes leads, enrollments and deliveries directly
through the models, and reads back what the service recorded. Time is a
`VirtualClock` shared by the app and the signer.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine, func, pool, select, text
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette

from nurture import db
from nurture.engine.clock import VirtualClock
from nurture.models import Base, Campaign, CampaignVersion, Delivery, Enrollment, Event, Lead, Tag
from nurture.tokens import TokenSigner
from nurture.tracking import create_app
from tests.live import serving

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
API_KEY = "test-api-key-0123456789abcdef"
SECRET = "test-secret-key-0123456789abcdef0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
LINKS: list[dict[str, Any]] = [
    {"index": 0, "name": "download", "url": "https://acme.cn/whitepaper.pdf"},
    {"index": 1, "name": None, "url": "https://acme.cn/价格?plan=pro&seats=5"},
    {"index": 2, "name": "bad", "url": "javascript:alert(1)"},
]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file upgraded to the newest migration once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "nurture.db"
    db.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_schema_url(pg_server: Engine) -> Iterator[str]:
    """A PostgreSQL schema upgraded to the newest migration once; emptied after each test."""
    schema = f"tracking_{uuid.uuid4().hex[:12]}"
    with pg_server.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = pg_server.url.update_query_dict({"options": f"-csearch_path={schema}"})
    rendered = url.render_as_string(hide_password=False)
    db.upgrade(rendered)
    yield rendered
    with pg_server.connect() as connection:
        connection.execute(text("SET lock_timeout = '10s'"))
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of each kind at the newest migration, with no rows."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, tmp_path / "nurture.db")
        yield f"sqlite:///{tmp_path / 'nurture.db'}"
        return
    url: str = request.getfixturevalue("pg_schema_url")
    yield url
    cleaner = db.make_engine(url, poolclass=pool.NullPool)
    try:
        with cleaner.begin() as connection:
            connection.execute(
                text("SET lock_timeout = '10s'")
            )  # a leaked session fails, not hangs
            for table in reversed(Base.metadata.sorted_tables):  # DELETE beats TRUNCATE here
                connection.execute(table.delete())
    finally:
        cleaner.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the database."""
    engine = db.make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return db.session_factory(engine)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T)


@pytest.fixture
def signer(clock: VirtualClock) -> TokenSigner:
    return TokenSigner(SECRET, clock=clock.now)


@dataclass
class Hooks:
    """Records the app's ``on_wake`` and ``on_lead`` calls."""

    woken: list[list[int]] = field(default_factory=list)
    leads: list[tuple[int, bool]] = field(default_factory=list)

    def on_wake(self, ids: list[int]) -> None:
        self.woken.append(ids)

    def on_lead(self, lead_id: int, created: bool) -> None:
        self.leads.append((lead_id, created))


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()


@pytest.fixture
def app(
    sessions: sessionmaker[Session], signer: TokenSigner, hooks: Hooks, clock: VirtualClock
) -> Starlette:
    return create_app(
        sessions,
        signer,
        api_key=API_KEY,
        on_wake=hooks.on_wake,
        on_lead=hooks.on_lead,
        clock=clock,
    )


@pytest_asyncio.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tracking.test") as c:
        yield c


@pytest.fixture
def live_url(app: Starlette) -> Iterator[str]:
    """The app under a real uvicorn on 127.0.0.1, for this test."""
    with serving(app, "tracking service") as url:
        yield url


@pytest_asyncio.fixture
async def live(live_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A real HTTP client of the uvicorn-served app."""
    async with httpx.AsyncClient(base_url=live_url, timeout=10) as c:
        yield c


@pytest_asyncio.fixture(params=["in-process", "uvicorn"])
async def any_client(
    request: pytest.FixtureRequest, app: Starlette
) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process, then under a real uvicorn."""
    if request.param == "uvicorn":
        live_url: str = request.getfixturevalue("live_url")
        async with httpx.AsyncClient(base_url=live_url, timeout=10) as c:
            yield c
    else:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tracking.test") as c:
            yield c


@dataclass(frozen=True)
class Touch:
    """A delivery seeded for a lead, and the enrollment that sent it."""

    lead_id: int
    enrollment_id: int
    delivery_id: int


class Seed:
    """Writes rows directly through the models, and reads back what the service recorded."""

    def __init__(self, sessions: sessionmaker[Session], clock: VirtualClock) -> None:
        self.sessions = sessions
        self.clock = clock
        self._version_id: int | None = None
        self._touches = 0
        self._leads = 0

    def lead(self, **fields: Any) -> int:
        self._leads += 1
        fields.setdefault("email", f"lead{self._leads}@acme.cn")
        with self.sessions() as session, session.begin():
            lead = Lead(**fields)
            session.add(lead)
            session.flush()
            return lead.id

    def enrollment(
        self,
        lead_id: int,
        *,
        state: str = "waiting",
        waiting: bool = True,
        due: datetime | None = None,
        campaign: str = "Welcome",
    ) -> int:
        with self.sessions() as session, session.begin():
            version = self._version(session, campaign)
            now = self.clock.now()
            enrollment = Enrollment(
                lead_id=lead_id,
                campaign_version_id=version,
                cursor="s2",
                state=state,
                next_run_at=due or now + 3 * DAY,
                waiting_for={"node": "s2", "since": now.isoformat(), "deadline": "x"}
                if waiting
                else None,
                entered_at=now,
            )
            session.add(enrollment)
            session.flush()
            return enrollment.id

    def touch(
        self, lead_id: int | None = None, *, links: list[dict[str, Any]] | None = LINKS
    ) -> Touch:
        """A lead (new unless given), parked on `if opened within 3 days`, and its delivery."""
        lead_id = lead_id if lead_id is not None else self.lead()
        enrollment_id = self.enrollment(lead_id)
        self._touches += 1
        with self.sessions() as session, session.begin():
            delivery = Delivery(
                enrollment_id=enrollment_id,
                step_id="s1",
                lead_id=lead_id,
                channel="email",
                template="welcome/cxo",
                status="sent",
                message_id=f"<{enrollment_id}.{self._touches}@nurture.test>",
                sent_at=self.clock.now(),
                links=links,
            )
            session.add(delivery)
            session.flush()
            return Touch(lead_id, enrollment_id, delivery.id)

    def _version(self, session: Session, name: str) -> int:
        campaign = session.scalar(select(Campaign).where(Campaign.name == name))
        if campaign is None:
            campaign = Campaign(name=name, current_version=1)
            session.add(campaign)
            session.flush()
            session.add(
                CampaignVersion(
                    campaign_id=campaign.id,
                    version=1,
                    content_hash=f"hash-{name}",
                    graph={},
                    source="",
                )
            )
            session.flush()
        version = session.scalar(
            select(CampaignVersion.id).where(CampaignVersion.campaign_id == campaign.id)
        )
        assert version is not None
        return version

    def events(self, lead_id: int | None = None) -> list[Event]:
        with self.sessions() as session:
            query = select(Event).order_by(Event.id)
            if lead_id is not None:
                query = query.where(Event.lead_id == lead_id)
            return list(session.scalars(query))

    def event_count(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(Event)) or 0

    def lead_count(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(Lead)) or 0

    def get_lead(self, lead_id: int) -> Lead | None:
        with self.sessions() as session:
            return session.get(Lead, lead_id)

    def get_enrollment(self, enrollment_id: int) -> Enrollment:
        with self.sessions() as session:
            enrollment = session.get(Enrollment, enrollment_id)
            assert enrollment is not None
            return enrollment

    def tags(self, lead_id: int) -> set[str]:
        with self.sessions() as session:
            return set(session.scalars(select(Tag.tag).where(Tag.lead_id == lead_id)))

    def rows_of(self, model: Any) -> list[Any]:
        with self.sessions() as session:
            return list(session.scalars(select(model)))

    def rows(self, model: Any, lead_id: int) -> list[Any]:
        with self.sessions() as session:
            return list(session.scalars(select(model).where(model.lead_id == lead_id)))


@pytest.fixture
def seed(sessions: sessionmaker[Session], clock: VirtualClock) -> Seed:
    return Seed(sessions, clock)


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session on the upgraded database, for the store-level tests."""
    with sessions() as session:
        yield session
