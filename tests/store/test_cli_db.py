"""`nurture db upgrade`, through the real command line."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from typer.testing import CliRunner

from nurture import db
from nurture.cli import app

runner = CliRunner()


def test_upgrade_creates_the_schema_and_says_so(db_url: str) -> None:
    result = runner.invoke(app, ["db", "upgrade", "--url", db_url])

    assert result.exit_code == 0, result.output
    assert "is up to date" in result.stdout
    assert len(result.stdout.strip().splitlines()) == 1
    engine = db.make_engine(db_url)
    try:
        assert "leads" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_upgrade_reads_the_url_from_the_environment(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NURTURE_DATABASE_URL", sqlite_url)

    result = runner.invoke(app, ["db", "upgrade"])

    assert result.exit_code == 0, result.output
    assert sqlite_url in result.stdout


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "not a url"),
        ("nosuchdb://host/db", "nosuchdb"),
        ("postgresql://app:s3cret@127.0.0.1:1/nurture", "127.0.0.1:1"),
        ("sqlite:////no/such/directory/nurture.db", "unable to open database file"),
        ("postgresql://app:s3cret@127.0.0.1:notaport/nurture", "the port is not a number"),
        ("mysql://app:s3cret@127.0.0.1/nurture", "use sqlite or postgresql, not mysql"),
    ],
    ids=[
        "not a URL",
        "unknown database",
        "nothing listening",
        "missing directory",
        "bad port",
        "unsupported database",
    ],
)
def test_a_bad_database_is_one_line_and_exit_1(url: str, expected: str) -> None:
    result = runner.invoke(app, ["db", "upgrade", "--url", url])

    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot upgrade")
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert "s3cret" not in result.output
