"""The campaigns pages: each deployed campaign with its leads; one campaign's flow picture
(Graphviz) with live numbers, versions with their leads, A/B arms, touches per step and a
dry run ("simulate", marketers and admins); not for sales."""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
from sqlalchemy import func, select

from dsl.graph import StepGraph
from nurture.console import create_console, projection
from nurture.console.campaigns import LIVE_SECONDS, Pictures
from nurture.engine.loops import pick_arm
from nurture.models import Campaign, CampaignVersion, Delivery, Enrollment, Lead
from nurture.runtime.database import runtime_engine, sessions_for
from nurture.runtime.deploying import deploy_sources
from nurture.runtime.edges import add_ways
from nurture.tokens import TokenSigner
from nurture.tracking import create_app
from tests.console.conftest import KEY, LOCKOUT, T, World, build, form, sign_in
from tests.console.test_queries import queries_of
from tests.console.test_touch import client_of, with_touches

pytestmark = pytest.mark.asyncio


@pytest.fixture
def deployed(world: World, tmp_path: Path) -> tuple[World, int]:
    world = with_touches(world, tmp_path)
    with world.sessions() as session:
        return world, session.scalars(select(Campaign.id)).one()


async def test_the_campaigns_and_one_campaigns_numbers(deployed: tuple[World, int]) -> None:
    world, campaign = deployed
    async with await client_of(world) as client:
        await sign_in(client, "mia@t.io")
        listing = (await client.get("/console/campaigns")).text
        page = (await client.get(f"/console/campaigns/{campaign}")).text

    assert (
        f'<a href="/console/campaigns/{campaign}">Hello</a></td><td>1</td><td>0</td><td>1</td>'
        in listing
    )
    assert "<h1>Hello</h1>" in page
    assert "<td>1 (current)</td>" in page
    assert "<td>0</td><td>0</td><td>1</td><td>0</td>" in page  # active, waiting, done, exited
    assert "<td>hello/note</td><td>2</td>" in page  # two touches of the first send step
    assert "<td>hello/tip-{{ loop.index }}</td><td>1</td>" in page.replace("&#34;", '"')


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz (dot) is not installed")
async def test_the_flow_picture_is_an_svg_image(deployed: tuple[World, int]) -> None:
    world, campaign = deployed
    async with await client_of(world) as client:
        await sign_in(client, "ann@t.io")
        page = (await client.get(f"/console/campaigns/{campaign}")).text
        src = f"/console/campaigns/{campaign}/versions/1.svg"
        assert f'<img src="{src}"' in page
        picture = await client.get(src)
        missing = await client.get(f"/console/campaigns/{campaign}/versions/9.svg")

    assert picture.headers["content-type"] == "image/svg+xml"
    assert picture.headers["content-security-policy"].startswith("default-src 'none'")
    assert b"<svg" in picture.content and b"hello/note" in picture.content
    assert missing.status_code == 404


async def test_sales_have_no_campaigns_and_unknown_ones_are_404(
    deployed: tuple[World, int],
) -> None:
    world, campaign = deployed
    pages = [
        "/console/campaigns",
        f"/console/campaigns/{campaign}",
        f"/console/campaigns/{campaign}/versions/1.svg",
    ]
    async with await client_of(world) as client:
        signed_out = [await client.get(page) for page in pages]
        await sign_in(client, world.owner("ada@corp.com"))
        for page in pages:
            sales = await client.get(page)
            assert sales.status_code == 403, page
            assert "<svg" not in sales.text and "Hello" not in sales.text
        assert all(r.status_code == 303 for r in signed_out)
        assert [r.headers["location"] for r in signed_out] == [
            f"/console/sign-in?next={page}" for page in pages
        ]
        client.cookies.clear()
        await sign_in(client, "admin@t.io")
        assert (await client.get("/console/campaigns/999")).status_code == 404


EVIL = """campaign "<script>alert('x')</script> \\"Q\\""
  enroll when tagged "ab"
  send email "t/hello"
  split:
    50% "<b onmouseover=alert(1)>s</b>":
      send email "t/hello"
    50% "l\\"ong & <x>":
      send email "t/hello"
"""


@pytest.fixture
def evil(world: World, tmp_path: Path) -> tuple[World, int]:
    """A campaign whose name and arm labels are markup and quotes."""
    (tmp_path / "templates" / "t").mkdir(parents=True)
    (tmp_path / "templates" / "t" / "hello.email.j2").write_text(
        "{% block subject %}Hi{% endblock %}{% block text %}Hello{% endblock %}"
    )
    deploy_sources(world.sessions, {str(tmp_path / "evil.nurture"): EVIL}, T)
    with world.sessions() as session:
        return world, session.scalars(select(Campaign.id)).one()


async def test_markup_in_names_and_labels_is_text_on_the_page_and_in_the_picture(
    evil: tuple[World, int],
) -> None:
    world, campaign = evil
    async with await client_of(world) as client:
        await sign_in(client, "mia@t.io")
        listing = (await client.get("/console/campaigns")).text
        page = (await client.get(f"/console/campaigns/{campaign}")).text
        simulated = await _simulate(client, campaign, leads="20", days="3", seed="0")
        picture = await client.get(f"/console/campaigns/{campaign}/versions/1.svg")

    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &#34;Q&#34;"
    assert f'">{escaped}</a>' in listing and "<script>alert" not in listing
    for shown in (page, simulated.text):
        assert f"<h1>{escaped}</h1>" in shown
        assert "<script>alert" not in shown and "<b onmouseover" not in shown
        assert 'alt="The flow of &lt;script&gt;' in shown
    assert "<tr><td>&lt;b onmouseover=alert(1)&gt;s&lt;/b&gt;</td>" in page  # the A/B arm
    if shutil.which("dot") is None:
        return
    svgs = [picture.content]
    found = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', simulated.text)
    assert found is not None
    svgs.append(base64.b64decode(found.group(1)))
    for svg in svgs:
        tree = ElementTree.fromstring(svg)  # well-formed: the labels' markup is text in it
        tags = {element.tag.rsplit("}", 1)[-1] for element in tree.iter()}
        texts = "".join(tree.itertext())
        assert not tags & {"script", "b", "x", "foreignObject"}, tags
        assert "<script>alert('x')</script> \"Q\"" in texts
        assert "50% <b onmouseover=alert(1)>s</b>" in texts and '50% l"ong & <x>' in texts
    assert picture.headers["x-content-type-options"] == "nosniff"


async def test_numbers_past_any_id_are_not_found(deployed: tuple[World, int]) -> None:
    world, campaign = deployed
    huge = 10**30
    async with await client_of(world) as client:
        await sign_in(client, "mia@t.io")
        page = (await client.get(f"/console/campaigns/{campaign}")).text
        answers = [
            await client.get(url)
            for url in (
                f"/console/campaigns/{huge}",
                f"/console/campaigns/{campaign}/versions/{huge}.svg",
                f"/console/campaigns/{campaign}?version={huge}",
                f"/console/leads/{huge}",
                f"/console/campaigns/{2**31}",
            )
        ]
        simulated = await form(
            client,
            page,
            f"/console/campaigns/{campaign}/simulate?version={huge}",
            leads="5",
            days="3",
            seed="0",
        )

    assert [a.status_code for a in answers] == [404] * 5, [a.text[:80] for a in answers]
    assert simulated.status_code == 404, simulated.text[:200]
    assert f"Hello has no version {huge}." in simulated.text


# ---------------------------------------------------------------- live numbers, versions, A/B

AB = """campaign "AB"
  enroll when tagged "ab"
  send email "t/hello"
  split:
    50% "short":
      send email "t/short"
    50% "long":
      send email "t/long"
"""


@dataclass
class Split:
    """The AB campaign in the console's world, two versions deployed, leads run through v2."""

    world: World
    campaign: int
    app: object
    ticks: list[float]
    arms: dict[str, int]
    """Leads per arm label."""
    version: int
    """v2's id."""


def _run_through(world: World, version_id: int, n: int, first: int = 0) -> dict[str, int]:
    """`n` leads enrolled in the version, each sent the first email and its arm's, with the
    ways recorded as the runtime records them (`add_ways`)."""
    arms: dict[str, int] = {}
    with world.sessions() as session, session.begin():
        version = session.get(CampaignVersion, version_id)
        assert version is not None
        graph = StepGraph.from_json(version.graph)
        [split] = [node for node in graph.nodes.values() if node.kind == "split"]
        first_send = graph.entry
        ways = []
        for i in range(first, first + n):
            lead = Lead(email=f"ab{i}@client.io", created_at=T, updated_at=T)
            session.add(lead)
            session.flush()
            edge = pick_arm(split.edges, lead.id, graph.name, split.id)
            label = str(edge.label)
            arms[label] = arms.get(label, 0) + 1
            enrollment = Enrollment(
                lead_id=lead.id,
                campaign_version_id=version_id,
                cursor=edge.target,
                state="done",
            )
            session.add(enrollment)
            session.flush()
            for step in (first_send, edge.target):
                session.add(
                    Delivery(
                        enrollment_id=enrollment.id,
                        step_id=step,
                        lead_id=lead.id,
                        channel="email",
                        template="t/x",
                        status="sent",
                        message_id=f"{enrollment.id}.{step}@t",
                    )
                )
            ways.append((version_id, [(first_send, split.id), (split.id, edge.target)]))
        add_ways(session, ways)
    return arms


@pytest.fixture
def split(world: World, tmp_path: Path) -> Split:
    return with_split(world, tmp_path)


def with_split(world: World, tmp_path: Path) -> Split:
    """The AB campaign deployed twice (v1: 40/60, Ada waiting; v2: 50/50, 12 leads through
    it) and a console whose pictures' clock the test moves."""
    path = str(tmp_path / "ab.nurture")
    (tmp_path / "templates" / "t").mkdir(parents=True)
    for name in ("hello", "short", "long"):
        (tmp_path / "templates" / "t" / f"{name}.email.j2").write_text(
            "{% block subject %}Hi{% endblock %}{% block text %}Hello{% endblock %}"
        )
    deploy_sources(
        world.sessions, {path: AB.replace("50%", "40%", 1).replace('50% "long"', '60% "long"')}, T
    )
    deploy_sources(world.sessions, {path: AB}, T)
    with world.sessions() as session:
        campaign = session.scalars(select(Campaign.id).where(Campaign.name == "AB")).one()
        v1, v2 = session.scalars(select(CampaignVersion.id).order_by(CampaignVersion.version)).all()
        session.add(
            Enrollment(
                lead_id=world.leads["ada@corp.com"].id,
                campaign_version_id=v1,
                cursor="n1",
                state="waiting",
            )
        )
        session.commit()
    arms = _run_through(world, v2, 12)
    ticks = [0.0]
    console = create_console(world.sessions, [KEY], clock=world.clock, lockout=LOCKOUT)
    console.state.console.pictures = Pictures(monotonic=lambda: ticks[0])
    app = create_app(world.sessions, TokenSigner(KEY), api_key=None, console=console)
    return Split(world, campaign, app, ticks, arms, v2)


def _client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://console.test")


needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")


@needs_dot
async def test_the_picture_carries_live_counts_and_the_ways_taken(split: Split) -> None:
    short, long = split.arms["short"], split.arms["long"]
    async with _client(split.app) as client:
        await sign_in(client, "mia@t.io")
        page = (await client.get(f"/console/campaigns/{split.campaign}")).text
        src = f"/console/campaigns/{split.campaign}/versions/2.svg"
        picture = (await client.get(src)).text
        # leads move on; within LIVE_SECONDS the same numbers are shown, after it the new ones
        _run_through(split.world, split.version, 3, first=100)
        kept = (await client.get(src)).text
        split.ticks[0] += LIVE_SECONDS + 1
        moved = (await client.get(src)).text

    assert f'<img src="{src}"' in page
    assert "entered 12 · sent 12" in picture  # the first email
    assert f">50% short · {short}<" in picture and f">50% long · {long}<" in picture
    assert f"entered {short} · sent {short}" in picture
    assert kept == picture
    assert "entered 15 · sent 15" in moved


async def test_versions_show_their_leads_and_pictures(split: Split) -> None:
    async with _client(split.app) as client:
        await sign_in(client, "ann@t.io")
        page = (await client.get(f"/console/campaigns/{split.campaign}")).text
        older = (await client.get(f"/console/campaigns/{split.campaign}?version=1")).text
        none = await client.get(f"/console/campaigns/{split.campaign}?version=7")

    versions = page[page.index("<h2>Versions</h2>") : page.index("A/B splits")]
    # v1: Ada waiting; v2: twelve done
    assert "<td>1</td><td>" in versions and "<td>0</td><td>1</td><td>0</td><td>0</td>" in versions
    assert "<td>2 (current)</td>" in versions
    assert "<td>0</td><td>0</td><td>12</td><td>0</td>" in versions
    assert f'href="/console/campaigns/{split.campaign}?version=1#flow">picture</a>' in versions
    assert "Flow (version 1)" in older and "/versions/1.svg" in older
    assert none.status_code == 404
    assert 'id="simulate"' not in page  # analysts look; they do not simulate


async def test_split_arms_with_their_results(split: Split) -> None:
    async with _client(split.app) as client:
        await sign_in(client, "mia@t.io")
        page = (await client.get(f"/console/campaigns/{split.campaign}")).text

    section = page[page.index("A/B splits") : page.index("<h2>Steps</h2>")]
    short, long = split.arms["short"], split.arms["long"]
    assert f"<tr><td>short</td><td>50%</td><td>{short}</td><td>{short}</td>" in section
    assert f"<tr><td>long</td><td>50%</td><td>{long}</td><td>{long}</td>" in section
    assert "Fisher&#39;s exact test" in section
    assert "not enough data to call a winner: a winner needs 30 leads in every arm" in section
    assert "points, long vs short" in section


# ---------------------------------------------------------------- simulate


async def _simulate(client: httpx.AsyncClient, campaign: int, **fields: str) -> httpx.Response:
    page = (await client.get(f"/console/campaigns/{campaign}")).text
    return await form(client, page, f"/console/campaigns/{campaign}/simulate", **fields)


async def test_simulate_shows_the_projected_picture_and_table(split: Split) -> None:
    async with _client(split.app) as client:
        await sign_in(client, "mia@t.io")
        done = await _simulate(client, split.campaign, leads="300", days="30", seed="7")
        again = await _simulate(client, split.campaign, leads="300", days="30", seed="7")

    assert done.status_code == 200, done.text
    page = done.text
    assert "Simulated: 300 leads, 30 days" in page
    table = page[page.index('<table class="projection">') :]
    assert "<td>300</td>" in table  # every simulated lead entered the first send
    assert "→ n" in table  # the split's ways out, with their counts
    if shutil.which("dot") is not None:
        found = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', page)
        assert found is not None
        svg = base64.b64decode(found.group(1)).decode("utf-8")
        assert "entered 300 · sent 300" in svg
        assert re.search(r">50% short · \d+<", svg)
    assert 'value="300"' in page and 'value="7"' in page  # the form keeps what was asked
    with split.world.sessions() as session:  # a dry run: nothing stored
        assert session.scalar(select(func.count()).select_from(Lead)) == 2 + 12

    def projected(text: str) -> str:  # the table and the picture: the same for one seed
        shown = text[text.index('<figure class="card" id="projection">') : text.index("</table>")]
        return re.sub(r"ran in [\d.]+ s", "ran in … s", shown)

    assert projected(again.text) == projected(page)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (
            {"leads": "lots", "days": "30", "seed": "0"},
            "leads must be a whole number (got &#39;lots&#39;)",
        ),
        (
            {"leads": "20001", "days": "30", "seed": "0"},
            "leads must be between 1 and 20,000 (got 20,001)",
        ),
        ({"leads": "10", "days": "366", "seed": "0"}, "days must be between 1 and 365 (got 366)"),
        ({"leads": "10", "days": "", "seed": "0"}, "days is required: a whole number."),
        ({"leads": "10", "days": "3", "seed": "-1"}, "seed must be between 0 and"),
    ],
)
async def test_simulate_refuses_bad_values_with_the_form_again(
    split: Split, fields: dict[str, str], words: str
) -> None:
    async with _client(split.app) as client:
        await sign_in(client, "admin@t.io")
        refused = await _simulate(client, split.campaign, **fields)

    assert refused.status_code == 400
    assert f'<p class="problem" role="alert">{words}' in refused.text
    assert 'id="simulate"' in refused.text and "Simulated:" not in refused.text
    assert f'value="{fields["leads"]}"' in refused.text


async def test_simulate_needs_the_csrf_token_and_a_marketer(split: Split) -> None:
    action = f"/console/campaigns/{split.campaign}/simulate"
    fields = {"leads": "10", "days": "3", "seed": "0"}
    async with _client(split.app) as client:
        await sign_in(client, "mia@t.io")
        no_token = await client.post(action, data=fields)
        forged = await client.post(action, data={**fields, "csrf": "forged"})
        client.cookies.clear()
        await sign_in(client, split.world.owner("ada@corp.com"))
        page = (await client.get("/console/inbox")).text
        sales = await form(client, page, action, **fields)
        client.cookies.clear()
        await sign_in(client, "ann@t.io")
        page = (await client.get(f"/console/campaigns/{split.campaign}")).text
        analyst = await form(client, page, action, **fields)

    assert no_token.status_code == 403 and forged.status_code == 403
    assert "reload the page" in no_token.text
    assert sales.status_code == 403 and "Simulations" not in sales.text  # sales: no campaigns
    assert analyst.status_code == 403 and "Simulations are run by marketers and admins" in (
        analyst.text
    )


async def test_a_run_past_its_time_limit_is_stopped(split: Split) -> None:
    with split.world.sessions() as session:
        version = session.get(CampaignVersion, split.version)
        assert version is not None
        program, graph = projection.program_of(session, version)
    asked = projection.Asked(leads=2000, days=30, seed=0)

    with pytest.raises(projection.Refused, match="took longer than 0 seconds") as refused:
        projection.project(program, graph, asked, seconds=0.0)

    assert refused.value.status == 422
    assert projection.project(program, graph, projection.Asked(5, 3, 0)).asked.leads == 5


LOOPING = """campaign "Looping"
  enroll when tagged "go"
  repeat 1000000 times:
    wait 1 minute
    tag "x"
"""


async def test_the_time_limit_holds_when_one_lead_takes_seconds(
    world: World, tmp_path: Path
) -> None:
    # Given a campaign that loops every minute: a lead's year is some 500,000 decisions, and
    # the simulator tells its progress only every 256 leads
    deploy_sources(world.sessions, {str(tmp_path / "looping.nurture"): LOOPING}, T)
    with world.sessions() as session:
        version = session.scalars(
            select(CampaignVersion).join(Campaign).where(Campaign.name == "Looping")
        ).one()
        program, graph = projection.program_of(session, version)

    # When five leads are simulated over a year with a limit of one second
    started = time.monotonic()
    with pytest.raises(projection.Refused, match="took longer than 1 seconds") as refused:
        projection.project(program, graph, projection.Asked(5, 365, 0), seconds=1.0)
    took = time.monotonic() - started

    # Then the run is stopped at the limit (with a process's start-up), not minutes later
    assert refused.value.status == 422
    assert took < 15, took
    assert not projection.RUNNING.locked()


async def test_the_campaign_page_and_picture_take_the_same_queries_for_more_leads(
    split: Split,
) -> None:
    world, page, picture = split.world, f"/console/campaigns/{split.campaign}", ""
    async with _client(split.app) as client:
        await sign_in(client, "mia@t.io")
        picture = f"{page}/versions/2.svg"
        few = (await queries_of(world, client, page), await queries_of(world, client, picture))
        _run_through(world, split.version, 40, first=200)
        split.ticks[0] += LIVE_SECONDS + 1  # the picture's numbers are read again

        many = (await queries_of(world, client, page), await queries_of(world, client, picture))

    assert few == many


async def test_workers_write_while_a_simulation_runs_on_sqlite(
    sqlite_url: str, tmp_path: Path
) -> None:
    # Given the console of `nurture run` on SQLite, whose transactions take the write lock
    world = build(sqlite_url)
    runtime = runtime_engine(sqlite_url)
    world.sessions = sessions_for(runtime)
    split = with_split(world, tmp_path)
    fields = {"leads": "20000", "days": "365", "seed": "0"}
    async with _client(split.app) as client:
        await sign_in(client, "mia@t.io")
        page = (await client.get(f"/console/campaigns/{split.campaign}")).text
        action = f"/console/campaigns/{split.campaign}/simulate"
        running = asyncio.create_task(form(client, page, action, **fields))
        while not projection.RUNNING.locked() and not running.done():
            await asyncio.sleep(0.01)

        # When a worker writes while the dry run is under way
        def write() -> None:
            with world.sessions() as session, session.begin():
                session.add(Lead(email="new@client.io", created_at=T, updated_at=T))

        started = time.monotonic()
        await asyncio.to_thread(write)
        waited = time.monotonic() - started
        still_running = projection.RUNNING.locked()
        done = await running

    # Then it is not kept waiting for the run to end
    assert still_running, "the run ended before the write: nothing was shown"
    assert waited < 2.0
    assert done.status_code in (200, 422), done.text
    runtime.dispose()
    world.engine.dispose()


async def test_one_simulation_at_a_time(split: Split) -> None:
    async with _client(split.app) as client:
        await sign_in(client, "mia@t.io")
        with projection.RUNNING:  # another request's run is under way
            busy = await _simulate(client, split.campaign, leads="10", days="3", seed="0")
        free = await _simulate(client, split.campaign, leads="10", days="3", seed="0")

    assert busy.status_code == 503
    assert "Another simulation is running on this server; try again in a moment." in busy.text
    assert free.status_code == 200 and "Simulated: 10 leads, 3 days" in free.text
