"""PostgreSQL's JIT is off on nurture's connections: compiling the funnel's grouped queries
cost more than running them (`nurture.db.no_jit`)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import make_url

from nurture import db


def setting(url: str) -> str:
    engine = db.make_engine(url)
    try:
        with engine.connect() as connection:
            return str(connection.scalar(text("SHOW jit")))
    finally:
        engine.dispose()


def test_nurture_connections_run_without_jit(pg_url: str) -> None:
    assert setting(pg_url) == "off"


def test_a_url_that_sets_jit_keeps_it(pg_url: str) -> None:
    parsed = make_url(pg_url)
    options = f"{parsed.query.get('options', '')} -c jit=on".strip()
    assert setting(parsed.update_query_dict({"options": options}).render_as_string(False)) == "on"
