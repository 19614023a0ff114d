"""Fixtures for the runtime tests: a deployed campaign on each database, a clock, channels.

``sessions`` is a session factory on a database (SQLite and PostgreSQL)
upgraded to the newest migration; ``clock`` a `VirtualClock` on a Monday
morning; ``runtime`` a `Runtime` on them whose channels are one
`RecordingChannel` (``channel``), so a test calls the executor directly and
sees every message it sent; ``smtp_server`` a real aiosmtpd server.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from channels import RecordingChannel
from nurture import db
from nurture.config import Settings
from nurture.engine.clock import VirtualClock
from nurture.models import Lead
from nurture.runtime.database import runtime_engine, sessions_for
from nurture.runtime.deploying import campaign_files, deploy_sources
from nurture.runtime.process import Runtime
from tests.runtime.campaign import write_campaign
from tests.runtime.services import (
    RabbitServer,
    RedisServer,
    SmtpServer,
    rabbitmq_missing,
    unavailable,
)

MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: the fault tests (about a minute each); they run in CI too"
    )


SECRET = "runtime-test-secret-0123456789abcdef0123456789"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url"}[request.param]
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    db.upgrade(db_url)
    engine = runtime_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessions_for(engine)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(MONDAY)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        outbox=tmp_path / "outbox",
        secret_key=SECRET,
        sender="Acme <news@acme.test>",
        max_attempts=3,
        retry_seconds=60,
        lease_seconds=60,
    )


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    """The folder of the `Hello` campaign and its templates."""
    return write_campaign(tmp_path / "campaigns").parent


@pytest.fixture
def deployed(
    sessions: sessionmaker[Session], campaign: Path, clock: VirtualClock
) -> sessionmaker[Session]:
    deploy_sources(sessions, campaign_files([campaign]), clock.now())
    return sessions


@pytest.fixture
def channel() -> RecordingChannel:
    return RecordingChannel()


@pytest.fixture
def runtime(
    settings: Settings, clock: VirtualClock, channel: RecordingChannel, deployed: object
) -> Iterator[Runtime]:
    runtime = Runtime.start(settings, clock, channels=lambda: dict.fromkeys(CHANNELS, channel))
    yield runtime
    runtime.close()


CHANNELS = ("email", "sms", "wechat", "webhook")


def add_lead(
    sessions: sessionmaker[Session], email: str = "ada@client.example", **fields: object
) -> int:
    """A new lead (its triggers not run yet), as the tracking API or an import leaves it."""
    values: dict[str, object] = {
        "email": email,
        "first_name": "Ada",
        "phone": "+8613912345678",
        "created_at": MONDAY,
        "updated_at": MONDAY,
    }
    values.update(fields)
    with sessions() as session, session.begin():
        lead = Lead(**values)
        session.add(lead)
        session.flush()
        return lead.id


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis of the tests' own, on a free port, for the whole session."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A database on the tests' own Redis for the test's queue, emptied before and after
    (and the server started again if the test left it stopped)."""
    if not redis_server.ping():
        redis_server.start()
    redis_server.flush()
    yield redis_server.url()
    redis_server.flush()


@pytest.fixture(scope="session")
def rabbitmq_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitServer]:
    """A RabbitMQ node of the tests' own, on free ports, for the whole session."""
    missing = rabbitmq_missing()
    if missing:
        unavailable(missing)
    server = RabbitServer(tmp_path_factory.mktemp("rabbitmq"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def rabbitmq_url(rabbitmq_server: RabbitServer) -> str:
    """A vhost of the test's own on the tests' RabbitMQ (started again if a test left it
    stopped): its queues are the test's alone."""
    if not rabbitmq_server.ping():
        rabbitmq_server.start()
    return rabbitmq_server.url(rabbitmq_server.new_vhost())


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest) -> str:
    """Each broker nurture runs on, by name (the fault tests run on both)."""
    name: str = request.param
    return name


@pytest.fixture
def broker_url(broker: str, request: pytest.FixtureRequest) -> str:
    """A namespace of the test's own on `broker`: a Redis database, or a RabbitMQ vhost."""
    url: str = request.getfixturevalue(f"{broker}_url")
    return url


@pytest.fixture
def pg_sessions(pg_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on a migrated PostgreSQL schema of the test's own (for the cluster tests)."""
    db.upgrade(pg_url)
    engine = runtime_engine(pg_url)
    yield sessions_for(engine)
    engine.dispose()
