"""Notes on leads: `nurture leads note`, `POST /api/leads/note`, and the story that shows them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from dsl import FileTemplates
from nurture import db
from nurture.config import Settings
from nurture.handoff.messages import outbound
from nurture.handoff.notes import MAX_NOTE, NoteError, add_note
from nurture.models import Lead, LeadNote, Notice
from nurture.render import Renderer
from nurture.store import Rules
from nurture.tokens import TokenSigner
from nurture.tracking import create_app
from tests.handoff.test_cli import nurture
from tests.handoff.test_handoff_store import east_lead, qualify
from tests.handoff.test_route import deployed, routing
from tests.store.test_scoring_store import MODEL

REPO = Path(__file__).resolve().parents[2]
KEY = "notes-api-key"
ROUTING = {
    **routing(),
    "notify": [{"channel": "webhook", "template": "crm/mql"}],
    "path": str(REPO / "campaigns" / "routing.nurture"),
}
"""The tests' routing, telling the CRM with the example campaigns' webhook template."""


@pytest.fixture
def url(
    migrated_url: str, migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> str:
    """A database holding the deployed routing and one MQL, owned by wang.fang@t.io."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NURTURE_DATABASE_URL", migrated_url)
    with Session(migrated_engine) as session:
        session.add(deployed(ROUTING))
        lead = east_lead(session, "ada@corp.com")
        assert qualify(session, lead, Rules(MODEL, ROUTING), datetime.now(UTC)) is not None
        session.commit()
    return migrated_url


def notes(engine: Engine) -> list[tuple[str, str]]:
    with Session(engine) as session:
        return [(n.author, n.text) for n in session.scalars(select(LeadNote).order_by(LeadNote.id))]


def test_sales_write_notes_that_the_story_shows(url: str, migrated_engine: Engine) -> None:
    # When the owner and a colleague write notes, by address and by id
    first = nurture(
        "leads", "note", "ada@corp.com", "Called: wants a demo in May", "--by", "wang.fang@t.io"
    )
    second = nurture("leads", "note", "1", "  Budget confirmed  ", "--by", "Li.Na@t.io")

    # Then both are stored, trimmed, and the story shows them in order, in the timeline too
    assert first[:2] == (0, "note 1 on lead 1 by wang.fang@t.io\n")
    assert second[:2] == (0, "note 2 on lead 1 by li.na@t.io\n")
    assert notes(migrated_engine) == [
        ("wang.fang@t.io", "Called: wants a demo in May"),
        ("li.na@t.io", "Budget confirmed"),
    ]
    code, out, _ = nurture("leads", "show", "ada@corp.com", "--json")
    story = json.loads(out)
    assert [(n["author"], n["text"]) for n in story["notes"]] == notes(migrated_engine)
    said = [e["what"] for e in story["timeline"] if e["kind"] == "note"]
    assert said == ["wang.fang@t.io: Called: wants a demo in May", "li.na@t.io: Budget confirmed"]
    code, text, _ = nurture("leads", "show", "ada@corp.com")
    assert code == 0 and "wang.fang@t.io: Called: wants a demo in May" in text


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("nobody@corp.com", "hi", "--by", "wang.fang@t.io"), "no lead 'nobody@corp.com'"),
        (("ada@corp.com", "   ", "--by", "wang.fang@t.io"), "the note is empty"),
        (("ada@corp.com", "x" * (MAX_NOTE + 1), "--by", "wang.fang@t.io"), "at most 4,000"),
        (("ada@corp.com", "hi", "--by", "who@t.io"), "no sales member 'who@t.io'"),
    ],
)
def test_a_bad_note_is_refused_by_name_and_nothing_is_written(
    url: str, migrated_engine: Engine, args: tuple[str, ...], words: str
) -> None:
    code, _, err = nurture("leads", "note", *args)

    assert code == 1 and words in err
    assert notes(migrated_engine) == []


def test_the_owners_notice_carries_the_notes(url: str, migrated_engine: Engine) -> None:
    # Given a note written after the MQL, before its notice to the CRM is sent
    with Session(migrated_engine) as session:
        lead = session.scalars(select(Lead)).one()
        add_note(session, lead, "wang.fang@t.io", "Prefers WeChat to email", datetime.now(UTC))
        session.commit()

        # When the notice is built from the example campaigns' CRM webhook template
        notice = session.scalars(select(Notice)).one()
        settings = Settings(crm_webhook_url="http://crm.example/hook", base_url="https://t.example")
        renderer = Renderer(FileTemplates(), TokenSigner("k" * 32), settings.base_url)
        message = outbound(session, notice, ROUTING, renderer, settings, datetime.now(UTC))

    # Then its body has the note, and the lead's (empty) account
    body: Any = message.body
    assert [(n["author"], n["text"]) for n in body["notes"]] == [
        ("wang.fang@t.io", "Prefers WeChat to email")
    ]
    assert body["lead"]["account"] == {"name": "", "status": "", "owner": ""}


def test_the_store_function_checks_what_the_console_will_send(
    url: str, migrated_engine: Engine
) -> None:
    with Session(migrated_engine) as session:
        lead = session.scalars(select(Lead)).one()
        with pytest.raises(NoteError, match="say who writes the note"):
            add_note(session, lead, " ", "hi", datetime.now(UTC))
        note = add_note(session, lead, "Amy@T.io", "hi", datetime.now(UTC), routing())
        assert (note.lead_id, note.author, note.text) == (lead.id, "amy@t.io", "hi")


# ---------------------------------------------------------------- the API


@pytest_asyncio.fixture
async def api(url: str, migrated_engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(db.session_factory(migrated_engine), TokenSigner("k" * 32), api_key=KEY)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        yield c


@pytest.mark.asyncio
async def test_the_api_writes_a_note(api: httpx.AsyncClient, migrated_engine: Engine) -> None:
    response = await api.post(
        "/api/leads/note", json={"lead": "ada@corp.com", "by": "wang.fang@t.io", "text": "Met"}
    )

    assert response.status_code == 200
    assert response.json() == {
        "lead": 1,
        "said": "note 1 on lead 1 by wang.fang@t.io",
        "changed": True,
    }
    assert notes(migrated_engine) == [("wang.fang@t.io", "Met")]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"lead": "x@corp.com", "by": "wang.fang@t.io", "text": "hi"}, 404, "no lead"),
        ({"lead": 1, "by": "who@t.io", "text": "hi"}, 404, "no sales member 'who@t.io'"),
        ({"lead": 1, "by": "wang.fang@t.io", "text": "  "}, 422, "$.text: empty"),
        ({"lead": 1, "by": "wang.fang@t.io"}, 422, "$.text: required"),
        (
            {"lead": 1, "by": "wang.fang@t.io", "text": "x" * (MAX_NOTE + 1)},
            422,
            "$.text: longer than 4,000 characters",
        ),
        ({"lead": 1, "by": "wang.fang@t.io", "text": "hi", "x": 1}, 422, "$.x: unknown field"),
        ([1], 422, "send a JSON object"),
    ],
)
async def test_a_bad_note_is_a_4xx_naming_what_and_writes_nothing(
    api: httpx.AsyncClient, migrated_engine: Engine, body: Any, status: int, words: str
) -> None:
    response = await api.post("/api/leads/note", json=body)

    assert response.status_code == status
    said = "; ".join(f"{e['path']}: {e['message']}" for e in response.json()["errors"])
    assert words in said
    assert notes(migrated_engine) == []


@pytest.mark.asyncio
async def test_without_the_key_no_note_is_written(
    api: httpx.AsyncClient, migrated_engine: Engine
) -> None:
    body = {"lead": 1, "by": "wang.fang@t.io", "text": "hi"}
    response = await api.post("/api/leads/note", json=body, headers={"Authorization": ""})

    assert response.status_code == 401
    with Session(migrated_engine) as session:
        assert session.scalar(select(func.count()).select_from(LeadNote)) == 0


def test_a_merge_keeps_the_notes_of_both_leads(url: str, migrated_engine: Engine) -> None:
    from nurture.store.merging import merge_leads

    with Session(migrated_engine) as session:
        ada = session.scalars(select(Lead)).one()
        other = Lead(email="ada.l@corp.com")
        session.add(other)
        session.flush()
        add_note(session, other, "amy@t.io", "Same person as ada@corp.com", datetime.now(UTC))
        merge_leads(session, ada, other, datetime.now(UTC), "same phone")
        session.commit()

        moved = session.scalars(select(LeadNote)).one()
        assert (moved.lead_id, moved.text) == (ada.id, "Same person as ada@corp.com")
