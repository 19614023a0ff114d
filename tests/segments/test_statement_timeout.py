"""NURTURE_STATEMENT_TIMEOUT: PostgreSQL cancels any statement nurture sends that runs too long.

Every test here runs on the real server: a slow statement is ``pg_sleep`` or a
query waiting for a lock another connection holds.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from nurture import db
from nurture.cli import app
from nurture.config import Settings
from nurture.models import Lead, Tag
from nurture.runtime.database import runtime_engine
from nurture.segments import export

runner = CliRunner()


@pytest.fixture
def pg(pg_url: str) -> str:
    """A migrated PostgreSQL schema holding two tagged leads."""
    db.upgrade(pg_url)
    engine = db.make_engine(pg_url)
    with Session(engine) as session, session.begin():
        session.add_all([Lead(id=1, email="ada@acme.com"), Lead(id=2, email="bo@x.cn")])
        session.flush()
        session.add_all([Tag(lead_id=1, tag="vip"), Tag(lead_id=2, tag="vip")])
    engine.dispose()
    return pg_url


def settings_engine(url: str) -> Engine:
    """The workers' engine, as `nurture.runtime.process.Runtime.start` builds it."""
    settings = Settings.load()
    return runtime_engine(url, statement_timeout=settings.statement_timeout)


@pytest.mark.parametrize(
    "make", [db.make_engine, runtime_engine, settings_engine], ids=["db", "runtime", "settings"]
)
def test_a_statement_over_the_timeout_is_cancelled_and_the_url_keeps_its_options(
    pg: str, make: Callable[[str], Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given NURTURE_STATEMENT_TIMEOUT=0.5 and an engine on a URL with its own search_path
    monkeypatch.setenv("NURTURE_STATEMENT_TIMEOUT", "0.5")
    engine = make(pg)
    try:
        with engine.connect() as connection:
            # Then the connection has the limit and still the URL's options
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "500ms"
            schema = str(make_url(pg).query["options"]).removeprefix("-csearch_path=")
            assert connection.execute(text("SHOW search_path")).scalar() == schema
            # When a statement sleeps for 5 s, Then the server cancels it at 0.5 s
            started = time.monotonic()
            with pytest.raises(OperationalError) as caught:
                connection.execute(text("SELECT pg_sleep(5)"))
            assert time.monotonic() - started < 3
            assert getattr(caught.value.orig, "sqlstate", None) == "57014"
    finally:
        engine.dispose()


def test_zero_means_no_limit_and_a_url_that_sets_one_keeps_it(
    pg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NURTURE_STATEMENT_TIMEOUT", "0")
    own = make_url(pg)
    own = own.update_query_dict({"options": f"{own.query['options']} -cstatement_timeout=1234"})
    for url, shown in ((pg, "0"), (own.render_as_string(hide_password=False), "1234ms")):
        for timeout in (None, 30.0):
            engine = db.make_engine(url, statement_timeout=timeout)
            with engine.connect() as connection:
                expected = "30s" if timeout and shown == "0" else shown
                assert connection.execute(text("SHOW statement_timeout")).scalar() == expected
            engine.dispose()


@pytest.fixture
def leads_locked(pg: str) -> Iterator[Callable[[float], threading.Thread]]:
    """Hold an exclusive lock on ``leads`` for some seconds, from another connection."""
    server = db.make_engine(pg, statement_timeout=0)
    threads: list[threading.Thread] = []

    def hold(seconds: float) -> threading.Thread:
        taken = threading.Event()

        def run() -> None:
            with server.connect() as connection:
                connection.execute(text("SET idle_in_transaction_session_timeout = '20s'"))
                connection.execute(text("LOCK TABLE leads IN ACCESS EXCLUSIVE MODE"))
                taken.set()
                time.sleep(seconds)
                connection.commit()

        thread = threading.Thread(target=run)
        thread.start()
        assert taken.wait(10)
        threads.append(thread)
        return thread

    yield hold
    for thread in threads:
        thread.join()
    server.dispose()


@pytest.mark.parametrize("command", ["count", "export"])
def test_a_segment_query_over_the_timeout_is_one_line_naming_the_setting(
    pg: str, command: str, leads_locked: Callable[[float], threading.Thread]
) -> None:
    # Given a segment query that waits for a lock held 15 s, and a timeout of 1 s
    leads_locked(15)
    started = time.monotonic()
    result = runner.invoke(
        app,
        ["segment", command, "--where", 'tagged "vip"', "--url", pg],
        env={"NURTURE_STATEMENT_TIMEOUT": "1"},
    )
    # Then the command stops after about a second, exit 1, with one line naming the setting
    assert time.monotonic() - started < 10
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "NURTURE_STATEMENT_TIMEOUT" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_timeout_is_one_line_naming_the_variable(pg: str) -> None:
    result = runner.invoke(
        app,
        ["segment", "count", "--where", 'tagged "vip"', "--url", pg],
        env={"NURTURE_STATEMENT_TIMEOUT": "a minute"},
    )
    assert result.exit_code == 1
    assert "NURTURE_STATEMENT_TIMEOUT must be a number of seconds" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_export_copy_longer_than_the_timeout_is_not_cut(
    pg: str, leads_locked: Callable[[float], threading.Thread]
) -> None:
    # Given an engine whose statements may run 1 s
    engine = db.make_engine(pg, statement_timeout=1)
    try:
        with engine.connect() as connection:
            # When the export's COPY runs 3 s (it waits for a lock held that long)
            leads_locked(3)
            out = io.StringIO()
            started = time.monotonic()
            written = export(connection, {"op": "tagged", "tag": "vip"}, datetime.now(UTC), out)
            # Then it is not cut: every row is written
            assert time.monotonic() - started > 1.5
            assert written == 2 and len(out.getvalue().splitlines()) == 3
            connection.rollback()
            # And the limit still holds for the next statements on the connection
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "1s"
    finally:
        engine.dispose()
