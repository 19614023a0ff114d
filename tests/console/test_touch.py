"""A touch's message on the lead page: rendered again from its template for the lead, with
its links untracked (reading it in the console records nothing), and only for who may see
the lead."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from dsl.templates import FileTemplates
from nurture.console import create_console
from nurture.models import CampaignVersion, Delivery, Enrollment, Event
from nurture.render import Renderer
from nurture.runtime.deploying import deploy_sources
from nurture.tokens import TokenSigner
from nurture.tracking import create_app
from tests.console.conftest import KEY, LOCKOUT, T, World, sign_in

pytestmark = pytest.mark.asyncio

ADA, LI = "ada@corp.com", "li@corp.cn"
CAMPAIGN = """campaign "Hello"
  enroll when tagged "never"
  send email "hello/note" subject "Hi {{ lead.first_name }} <3"
  repeat 2 times:
    send email "hello/tip-{{ loop.index }}" subject "Tip {{ loop.index }} of {{ loop.length }}"
    wait 1 day
"""
NOTE = """{% block html %}<p>Dear {{ lead.first_name }} of {{ lead.company }},</p>
<p><a href="https://corp.example/guide">the guide</a></p>{% endblock %}
{% block text %}Dear {{ lead.first_name }}: https://corp.example/guide{% endblock %}
"""


@pytest.fixture
def touched(world: World, tmp_path: Path) -> World:
    return with_touches(world, tmp_path)


def with_touches(world: World, tmp_path: Path) -> World:
    """A deployed campaign with its templates on disk, three touches of Ada's, and a console
    that renders them with those templates."""
    templates = tmp_path / "templates" / "hello"
    templates.mkdir(parents=True)
    (templates / "note.email.j2").write_text(NOTE, encoding="utf-8")
    for n in (1, 2):
        (templates / f"tip-{n}.email.j2").write_text(
            "{% block text %}Tip number {{ loop.index }} for {{ lead.first_name }}{% endblock %}",
            encoding="utf-8",
        )
    deploy_sources(world.sessions, {str(tmp_path / "hello.nurture"): CAMPAIGN}, T)
    with world.sessions() as session:
        version = session.scalars(select(CampaignVersion)).one()
        sends = {
            str(n["params"]["template"]): str(n["id"])
            for n in version.graph["nodes"]
            if n["kind"] == "send"
        }
        enrollment = Enrollment(
            lead_id=world.leads[ADA].id, campaign_version_id=version.id, cursor="done", state="done"
        )
        session.add(enrollment)
        session.flush()
        for iteration, (template, step) in enumerate(
            [
                ("hello/note", sends["hello/note"]),
                ("hello/tip-2", sends["hello/tip-{{ loop.index }}"]),
                ("hello/gone", sends["hello/note"]),
            ]
        ):
            session.add(
                Delivery(
                    enrollment_id=enrollment.id,
                    step_id=step,
                    iteration=1 if "tip" in template else iteration,
                    lead_id=world.leads[ADA].id,
                    channel="email",
                    template=template,
                    status="sent",
                    message_id=f"m{iteration}@t",
                    sent_at=T,
                )
            )
        session.commit()
    signer = TokenSigner(KEY)
    renderer = Renderer(FileTemplates(), signer, "http://t.example")
    console = create_console(
        world.sessions, [KEY], clock=world.clock, lockout=LOCKOUT, renderer=renderer
    )
    world.app = create_app(world.sessions, signer, api_key=None, console=console)
    return world


def touch_ids(world: World) -> dict[str, int]:
    with world.sessions() as session:
        return {t: i for t, i in session.execute(select(Delivery.template, Delivery.id))}


async def client_of(world: World) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=world.app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://console.test")


async def test_a_touch_shows_its_message_without_tracking(touched: World) -> None:
    ids = touch_ids(touched)
    async with await client_of(touched) as client:
        await sign_in(client, touched.owner(ADA))
        lead_page = (await client.get(f"/console/leads/{touched.leads[ADA].id}")).text
        assert f'/touches/{ids["hello/note"]}">hello/note</a> · sent' in lead_page

        page = (
            await client.get(f"/console/leads/{touched.leads[ADA].id}/touches/{ids['hello/note']}")
        ).text

    assert "Hi Ada &lt;3" in page  # the step's subject, rendered and escaped
    assert "Dear Ada: https://corp.example/guide" in page  # the text part
    assert "srcdoc=" in page and "Analytical Engines" in page  # the HTML part, sandboxed
    assert "https://corp.example/guide" in page and "http://t.example/c/" not in page
    assert "http://t.example/o/" not in page  # no open pixel
    with touched.sessions() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Event).where(Event.type.in_(["opened", "clicked"]))
            )
            == 0
        )


async def test_a_touch_in_a_repeat_renders_its_round(touched: World) -> None:
    ids = touch_ids(touched)
    async with await client_of(touched) as client:
        await sign_in(client, touched.owner(ADA))
        page = (
            await client.get(f"/console/leads/{touched.leads[ADA].id}/touches/{ids['hello/tip-2']}")
        ).text
    assert "Tip 2 of 2" in page and "Tip number 2 for Ada" in page


async def test_a_template_that_is_gone_says_so(touched: World) -> None:
    ids = touch_ids(touched)
    async with await client_of(touched) as client:
        await sign_in(client, touched.owner(ADA))
        page = await client.get(
            f"/console/leads/{touched.leads[ADA].id}/touches/{ids['hello/gone']}"
        )
    assert page.status_code == 200
    assert "Cannot show the message: it does not render now:" in page.text
    assert "no template `hello/gone`" in page.text


async def test_another_reps_touches_and_other_leads_touches_are_not_found(touched: World) -> None:
    ids = touch_ids(touched)
    async with await client_of(touched) as client:
        await sign_in(client, touched.owner(LI))
        theirs = await client.get(
            f"/console/leads/{touched.leads[ADA].id}/touches/{ids['hello/note']}"
        )
        mixed = await client.get(
            f"/console/leads/{touched.leads[LI].id}/touches/{ids['hello/note']}"
        )
    assert (theirs.status_code, mixed.status_code) == (404, 404)
    assert "This lead has no such touch." in mixed.text
