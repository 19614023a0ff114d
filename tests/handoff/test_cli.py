"""`nurture sales ...` and `nurture leads show` on both databases: answers, refusals, story."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from nurture.cli import app
from nurture.models import Lead, MqlRecord
from tests.handoff.test_handoff_store import RULES, east_lead, qualify

runner = CliRunner()


@pytest.fixture
def url(
    migrated_url: str, migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> str:
    """A migrated database holding one MQL, owned by wang.fang@t.io; the only database the
    commands can see."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NURTURE_DATABASE_URL", migrated_url)
    with Session(migrated_engine) as session:
        lead = east_lead(session, "ada@corp.com")
        lead.first_name = "Ada"
        assert qualify(session, lead, RULES, datetime.now(UTC)) is not None
        session.commit()
    return migrated_url


def nurture(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def state(engine: Engine) -> tuple[str, str | None, bool]:
    with Session(engine) as session:
        lead = session.scalars(select(Lead)).one()
        mql = session.scalars(select(MqlRecord)).one()
        return lead.stage, lead.owner, mql.accepted_at is not None


def test_the_owner_accepts_then_reports_stages_to_won(url: str, migrated_engine: Engine) -> None:
    assert nurture("sales", "accept", "ada@corp.com", "--by", "wang.fang@t.io")[:2] == (
        0,
        "lead 1 accepted by wang.fang@t.io\n",
    )
    assert nurture("sales", "stage", "1", "sql", "--by", "wang.fang@t.io")[0] == 0
    code, out, _ = nurture(
        "sales", "stage", "ada@corp.com", "won", "--by", "wang.fang@t.io", "--amount", "8000"
    )

    assert (code, out) == (0, "lead 1 is customer now, amount 8000.00\n")
    assert state(migrated_engine) == ("customer", "wang.fang@t.io", True)


def test_the_owner_returns_a_lead_with_a_reason(url: str, migrated_engine: Engine) -> None:
    code, out, _ = nurture(
        "sales", "return", "ada@corp.com", "--by", "wang.fang@t.io", "--reason", "no budget"
    )

    assert (code, out) == (0, "lead 1 returned to nurture by wang.fang@t.io: no budget\n")
    assert state(migrated_engine) == ("returned", None, False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("accept", "nobody@corp.com", "--by", "x@t.io"), "no lead 'nobody@corp.com'"),
        (("accept", "1", "--by", "li.na@t.io"), "lead 1 belongs to wang.fang@t.io, not li.na"),
        (("return", "1", "--by", "wang.fang@t.io", "--reason", " "), "needs a reason"),
        (("stage", "1", "won", "--by", "wang.fang@t.io", "--amount", "-5"), "between 0 and"),
        (("stage", "1", "lost", "--by", "wang.fang@t.io"), "a lost deal needs a reason"),
        (("away", "li.na@t.io"), "give either --until DATE or --back"),
        (("away", "li.na@t.io", "--until", "next week"), "is not a date"),
        (("away", "who@t.io", "--back"), "no sales member 'who@t.io'"),
    ],
)
def test_a_refused_answer_exits_1_or_2_with_words_and_changes_nothing(
    url: str, migrated_engine: Engine, args: tuple[str, ...], message: str
) -> None:
    code, out, err = nurture("sales", *args)

    assert code in (1, 2)
    assert message in " ".join(err.split())
    assert "Traceback" not in out + err
    assert state(migrated_engine) == ("mql", "wang.fang@t.io", False)


def test_leads_show_tells_the_whole_story(url: str) -> None:
    nurture("sales", "accept", "ada@corp.com", "--by", "wang.fang@t.io")

    code, out, _ = nurture("leads", "show", "ada@corp.com")
    code_json, text, _ = nurture("leads", "show", "1", "--json")

    assert code == code_json == 0
    assert "lead 1: Ada" in out
    assert "round robin" in out and "accepted by wang.fang@t.io" in out
    story = json.loads(text)
    assert story["lead"]["owner"] == "wang.fang@t.io"
    assert [e["kind"] for e in story["timeline"]] == [
        "event",
        "event",
        "event",
        "stage",
        "assignment",
        "accepted",
    ]
    assert story["mqls"][0]["team"] == "east"


def test_leads_show_of_an_unknown_lead_exits_1(url: str) -> None:
    code, _out, err = nurture("leads", "show", "nobody@corp.com")

    assert code == 1
    assert "no lead 'nobody@corp.com'" in err
