"""Fixtures for the handoff tests: a session on each kind of upgraded database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from nurture import db


@pytest.fixture
def session(migrated_engine: Engine) -> Iterator[Session]:
    """A session on the upgraded database (SQLite, then PostgreSQL)."""
    with db.session_factory(migrated_engine)() as session:
        yield session


from tests.browser.conftest import page  # noqa: E402, F401  (a fixture, shared)
from tests.channels.conftest import (  # noqa: E402, F401  (fixtures, shared)
    provider,
    provider_server,
    smtp_server,
)
