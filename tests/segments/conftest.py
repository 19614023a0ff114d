"""Fixtures for the segment tests: the dataset on SQLite and PostgreSQL, loaded once a module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from nurture import db
from tests.segments.dataset import Reference, load


@dataclass(frozen=True, slots=True)
class Loaded:
    """A migrated database holding `dataset.PEOPLE`."""

    url: str
    engine: Engine
    ids: dict[str, int]
    reference: Reference

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


@pytest.fixture
def db_url(migrated_url: str) -> str:
    """An empty, migrated database of each kind, by URL."""
    return migrated_url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Loaded]:
    """The dataset in a database of each kind, shared by a module's tests (they only read)."""
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('segments') / 'nurture.db'}"
    else:
        server: Engine = request.getfixturevalue("pg_server")
        schema = f"test_{uuid.uuid4().hex[:16]}"
        with server.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        query = {"options": f"-csearch_path={schema}"}
        url = server.url.update_query_dict(query).render_as_string(hide_password=False)
    db.upgrade(url)
    engine = db.make_engine(url)
    try:
        ids = load(engine)
        yield Loaded(url, engine, ids, Reference.read(engine))
    finally:
        engine.dispose()
        if schema is not None:
            with server.connect() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def write(folder: Path, name: str, text: str) -> Path:
    """A file under `folder`, folders made as needed."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
