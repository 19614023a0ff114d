"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text

from nurture import db
from nurture.models import Base

UPDATED = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def test_upgrade_creates_every_table_at_head(engine: Engine) -> None:
    # Given a database upgraded by the `engine` fixture
    head = ScriptDirectory.from_config(db.alembic_config()).get_current_head()

    # Then every model has its table and the database is at the newest revision
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        revision = MigrationContext.configure(connection).get_current_revision()
    assert tables == {*Base.metadata.tables, "alembic_version"}
    assert revision == head


def test_models_and_migrations_agree(engine: Engine) -> None:
    # Given a freshly upgraded database
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        # When autogenerate compares it with the models
        diff = compare_metadata(context, Base.metadata)

    # Then there is nothing to migrate
    assert diff == []


def test_constraint_and_index_names_match_the_models(engine: Engine) -> None:
    # compare_metadata ignores CHECK constraints and matches foreign keys by columns,
    # so the names a later migration will need to drop are checked here.
    with engine.connect() as connection:
        inspector = inspect(connection)
        for table in Base.metadata.sorted_tables:
            reflected = {
                inspector.get_pk_constraint(table.name)["name"],
                *(c["name"] for c in inspector.get_check_constraints(table.name)),
                *(c["name"] for c in inspector.get_foreign_keys(table.name)),
                *(c["name"] for c in inspector.get_unique_constraints(table.name)),
                *(c["name"] for c in inspector.get_indexes(table.name)),
            }
            declared = {c.name for c in table.constraints} | {i.name for i in table.indexes}
            assert reflected == declared, table.name


def test_upgrade_twice_changes_nothing(db_url: str) -> None:
    db.upgrade(db_url)
    db.upgrade(db_url)


def test_downgrade_to_base_leaves_no_tables(engine: Engine, db_url: str) -> None:
    # When the only migration is undone
    command.downgrade(db.alembic_config(db_url), "base")

    # Then only Alembic's bookkeeping remains
    with engine.connect() as connection:
        assert inspect(connection).get_table_names() == ["alembic_version"]


def test_alembic_needs_no_ini_file() -> None:
    config = db.alembic_config("sqlite://")

    assert config.config_file_name is None
    script_location = Path(config.get_main_option("script_location") or "")
    assert (script_location / "script.py.mako").is_file()
    assert (script_location / "versions" / "0001_initial.py").is_file()


def test_leads_with_interest_are_rescored_on_the_first_sweep_after_0005(db_url: str) -> None:
    # Given a database at 0004 with a lead that has interest and one that has none
    config = db.alembic_config(db_url)
    command.upgrade(config, "0004")
    engine = create_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO leads (email, attributes, interest, created_at, updated_at) "
                    "VALUES (:email, '{}', :interest, :at, :at)"
                ),
                [
                    {"email": "warm@client.example", "interest": 12.5, "at": UPDATED},
                    {"email": "cold@client.example", "interest": 0, "at": UPDATED},
                ],
            )

        # When it is upgraded
        command.upgrade(config, "head")

        # Then the lead with interest is due for a rescore at once, the other never
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT email, rescore_at FROM leads ORDER BY email"))
            due = {email: at for email, at in rows}
    finally:
        engine.dispose()
    assert due["cold@client.example"] is None
    assert due["warm@client.example"] is not None


RACER = """
import sys, time
from pathlib import Path
from nurture import db
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
db.upgrade(sys.argv[1])
"""


def test_two_upgrades_at_once_on_postgresql_both_succeed(pg_url: str, tmp_path: Path) -> None:
    # Given two `db.upgrade` processes on one fresh schema, released at the same moment
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, pg_url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(2)  # both imported nurture and wait for the signal
    go.touch()

    # When both run, then neither fails: the second waits for the first, finds nothing to do
    outcomes = [(racer.wait(timeout=120), racer.communicate()[1]) for racer in racers]
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    engine = create_engine(db.normalize_url(pg_url))
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    assert versions == [(db.head_revision(),)]
