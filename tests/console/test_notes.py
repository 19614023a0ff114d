"""Notes from the lead page: the owner, marketers and admins write one (`add_note`'s
limits and words), it shows on the page and in the timeline; nobody else writes one,
and a forged or missing CSRF token writes nothing."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from nurture.handoff.notes import MAX_NOTE
from nurture.models import LeadNote
from tests.console.conftest import World, form, sign_in

pytestmark = pytest.mark.asyncio

ADA, LI = "ada@corp.com", "li@corp.cn"


def path(world: World, email: str) -> str:
    return f"/console/leads/{world.leads[email].id}"


def notes(world: World) -> list[tuple[int, str, str]]:
    with world.sessions() as session:
        found = session.scalars(select(LeadNote).order_by(LeadNote.id))
        return [(n.lead_id, n.author, n.text) for n in found]


async def test_the_owner_writes_a_note_and_sees_it_on_the_page_and_in_the_timeline(
    client: httpx.AsyncClient, world: World
) -> None:
    owner = world.owner(ADA)
    await sign_in(client, owner)
    page = (await client.get(path(world, ADA))).text
    assert f'action="{path(world, ADA)}/note"' in page and "no notes yet" in page

    text = "  Call on Tuesday\nre: budget "
    done = await form(client, page, f"{path(world, ADA)}/note", text=text)

    assert (done.status_code, done.headers["location"]) == (303, path(world, ADA))
    assert notes(world) == [(world.leads[ADA].id, owner, "Call on Tuesday\nre: budget")]
    after = (await client.get(path(world, ADA))).text
    assert "Note added." in after
    assert f"2026-03-02 10:00 · {owner}</div><p>Call on Tuesday\nre: budget</p>" in after
    assert f'<td class="kind">note</td><td>{owner}: Call on Tuesday' in after


async def test_a_marketer_who_is_no_routing_member_writes_a_note(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, "mia@t.io")
    page = (await client.get(path(world, LI))).text

    done = await form(client, page, f"{path(world, LI)}/note", text="Met at the 上海 fair")

    assert done.status_code == 303
    assert notes(world) == [(world.leads[LI].id, "mia@t.io", "Met at the 上海 fair")]


async def test_an_admin_writes_and_an_analyst_reads_only(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, "admin@t.io")
    page = (await client.get(path(world, ADA))).text
    assert (await form(client, page, f"{path(world, ADA)}/note", text="ok")).status_code == 303
    client.cookies.clear()
    await sign_in(client, "ann@t.io")
    page = (await client.get(path(world, ADA))).text
    assert 'name="text"' not in page and "admin@t.io" in page  # the note, without a form

    refused = await form(client, page, f"{path(world, ADA)}/note", text="mine")

    assert refused.status_code == 403
    assert [n[1] for n in notes(world)] == ["admin@t.io"]


async def test_a_rep_cannot_note_another_reps_lead_by_guessing_its_url(
    client: httpx.AsyncClient, world: World
) -> None:
    ada, li = world.leads[ADA], world.leads[LI]
    assert ada.owner != li.owner
    await sign_in(client, world.owner(ADA))
    page = (await client.get(path(world, ADA))).text

    for lead_id in (li.id, li.id + 1000):
        guessed = await form(client, page, f"/console/leads/{lead_id}/note", text="mine now")
        assert guessed.status_code == 404
        assert "There is no such lead, or it is not yours." in guessed.text
    assert notes(world) == []


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("   ", "The note is empty: write what you learnt."),
        ("x" * (MAX_NOTE + 1), f"The note has {MAX_NOTE + 1:,} characters; at most {MAX_NOTE:,}."),
    ],
)
async def test_an_empty_or_long_note_is_400_with_add_notes_words_and_keeps_the_text(
    client: httpx.AsyncClient, world: World, text: str, said: str
) -> None:
    await sign_in(client, world.owner(ADA))
    page = (await client.get(path(world, ADA))).text

    refused = await form(client, page, f"{path(world, ADA)}/note", text=text)

    assert refused.status_code == 400
    assert f'<p class="problem" role="alert">{said}</p>' in refused.text
    assert text.strip()[:50] in refused.text  # what was typed is not lost
    assert notes(world) == []


async def test_the_longest_note_in_any_script_fits_the_form(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, world.owner(LI))
    page = (await client.get(path(world, LI))).text
    text = "华" * MAX_NOTE  # 9 bytes each, percent-encoded

    done = await form(client, page, f"{path(world, LI)}/note", text=text)

    assert done.status_code == 303 and notes(world)[0][2] == text


async def test_a_note_needs_the_csrf_token(client: httpx.AsyncClient, world: World) -> None:
    await sign_in(client, world.owner(ADA))
    for token in (None, "forged"):
        data = {"text": "hello"} | ({"csrf": token} if token else {})
        refused = await client.post(f"{path(world, ADA)}/note", data=data)
        assert refused.status_code == 403
    assert notes(world) == []


async def test_a_note_is_shown_as_text(client: httpx.AsyncClient, world: World) -> None:
    await sign_in(client, "mia@t.io")
    page = (await client.get(path(world, ADA))).text
    await form(client, page, f"{path(world, ADA)}/note", text="<script>alert(1)</script>")

    after = (await client.get(path(world, ADA))).text

    assert "<script>alert(1)" not in after and "&lt;script&gt;alert(1)&lt;/script&gt;" in after
