"""The handoff on the production stack, end to end: PostgreSQL, Redis, a `nurture worker`,
`nurture serve` and `nurture scheduler` as processes, aiosmtpd for the owner's mail, a real
HTTP receiver for the CRM, and a real browser for the links in that mail.

One lead asks for a demo: it becomes an MQL, its owner gets the mail and the CRM the
webhook, the owner accepts in the browser, reports SQL and a won deal, and the funnel shows
the deal against its cost. A second is returned in the browser with a reason and enters the
campaign that takes returned leads. A third is not accepted: when its SLA runs out (moved
into the past in the database, as the clock would), the next member gets it and is mailed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from nurture import db
from nurture.cli import app
from nurture.models import Campaign, CampaignVersion, Enrollment, Lead, MqlRecord
from nurture.runtime.deploying import campaign_files, deploy_sources
from tests.channels.provider import SECRET as WEBHOOK_SECRET
from tests.channels.provider import Provider
from tests.channels.servers import SmtpServer
from tests.live import free_port, healthy, nurture_process, wait_for
from tests.runtime.services import RedisServer, unavailable

REPO = Path(__file__).resolve().parents[2]
KEY = "stack-test-secret-0123456789abcdef0123"
API_KEY = "stack-api-key"
ROUTING = """\
team "inbound"
  member "amy@acme.example" name "Amy"
  member "tom@acme.example" name "Tom"

routing
  assign round robin team "inbound" otherwise
  notify by email "sales/new-mql" and webhook "crm/mql"
  accept within 1 hour else reassign
  return reasons: "not a fit", "no budget"
"""
SCORING = """\
scoring "Stack"
  interest:
    +40 per event "demo_requested"
  mql when event "demo_requested"
"""
RECYCLE = """\
campaign "Recycle"
  enroll when returned
  wait 30 days
"""


@pytest.fixture
def stack(
    pg_url: str, smtp_server: SmtpServer, provider: Provider, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    """Every part running; the service's URL, the database and where things land."""
    db.upgrade(pg_url)
    folder = tmp_path / "campaigns"
    (folder / "templates").mkdir(parents=True)
    for name in ("sales/new-mql.email.j2", "crm/mql.webhook.j2"):
        target = folder / "templates" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((REPO / "campaigns" / "templates" / name).read_text("utf-8"), "utf-8")
    for name, text in {"routing": ROUTING, "scoring": SCORING, "recycle": RECYCLE}.items():
        (folder / f"{name}.nurture").write_text(text, encoding="utf-8")
    engine = db.make_engine(pg_url)
    sessions = db.session_factory(engine)
    deploy_sources(sessions, campaign_files([folder]), datetime.now(UTC))
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        for email in ("ada@corp.example", "bo@corp.example", "cy@corp.example"):
            session.add(
                Lead(
                    email=email,
                    source="webinar",
                    attributes={},
                    created_at=now,
                    updated_at=now,
                    triggers_checked_at=now,
                )
            )
    try:
        redis_server = RedisServer()
        redis_server.start()
    except RuntimeError as e:
        unavailable(str(e))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    env.update(
        NURTURE_DATABASE_URL=pg_url,
        NURTURE_BROKER_URL=redis_server.url(),
        NURTURE_SMTP_URL=smtp_server.url(query="from=news@acme.example"),
        NURTURE_SECRET_KEY=KEY,
        NURTURE_API_KEY=API_KEY,
        NURTURE_BASE_URL=base,
        NURTURE_CRM_WEBHOOK_URL=f"{provider.base_url}/hook/crm",
        NURTURE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        NURTURE_SCHEDULER_INTERVAL="0.2",
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    try:
        with (
            nurture_process(
                ["worker", "--processes", "1", "--threads", "2"], env, logs / "worker.log"
            ),
            nurture_process(serve, env, logs / "serve.log"),
            nurture_process(["scheduler"], env, logs / "scheduler.log"),
        ):
            wait_for(
                "the worker",
                lambda: "ready for action" in (logs / "worker.log").read_text(),
                log=logs / "worker.log",
            )
            wait_for("the tracking service", lambda: healthy(base), log=logs / "serve.log")
            yield {"url": base, "sessions": sessions, "env": env, "logs": logs}
    finally:
        redis_server.stop()
        engine.dispose()


def demo_request(stack: dict[str, Any], email: str) -> None:
    event = {"lead": {"email": email}, "type": "custom", "name": "demo_requested"}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    httpx.post(f"{stack['url']}/api/events", json=event, headers=headers).raise_for_status()


def mail_to(smtp_server: SmtpServer, owner: str, count: int = 1) -> str:
    """The text part of the `count`-th mail `owner` got, once it arrived."""

    def mails() -> list[Any]:
        return [m for m in smtp_server.messages if m.rcpt_tos == [owner]]

    wait_for(f"mail {count} to {owner}", lambda: len(mails()) >= count)
    body = mails()[count - 1].message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def link(text: str, label: str) -> str:
    found = re.search(rf"^{label}: (\S+)", text, re.M)
    assert found is not None, text
    return found.group(1)


def mql(stack: dict[str, Any], email: str) -> MqlRecord:
    with stack["sessions"]() as session:
        lead = session.scalars(select(Lead).where(Lead.email == email)).one()
        found = session.scalars(select(MqlRecord).where(MqlRecord.lead_id == lead.id)).one()
        session.expunge(found)
        return found


def nurture(stack: dict[str, Any], *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=stack["env"])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.asyncio
async def test_a_demo_request_becomes_a_won_deal_through_mail_browser_and_crm(
    stack: dict[str, Any], smtp_server: SmtpServer, provider: Provider, page: Any, tmp_path: Path
) -> None:
    # A demo request: an MQL, its owner mailed and the CRM told, at once
    demo_request(stack, "ada@corp.example")
    text = mail_to(smtp_server, "amy@acme.example")  # the same weight: the first written
    wait_for("the CRM webhook", lambda: len(provider.requests) == 1)
    crm = provider.requests[0].json
    assert (crm["lead"]["email"], crm["owner"]["email"]) == ("ada@corp.example", "amy@acme.example")

    # The owner accepts in the browser, then reports SQL and a won deal
    await page.goto(link(text, "Accept"))
    await page.get_by_role("button", name="Accept · 接受").click()
    await page.wait_for_selector("text=accepted by amy@acme.example")
    nurture(stack, "sales", "stage", "ada@corp.example", "sql", "--by", "amy@acme.example")
    nurture(
        stack,
        "sales",
        "stage",
        "ada@corp.example",
        "won",
        "--by",
        "amy@acme.example",
        "--amount",
        "60000",
    )

    # And the funnel shows the deal against what the source cost
    costs = tmp_path / "costs.csv"
    costs.write_text(f"source,month,amount\nwebinar,{datetime.now(UTC):%Y-%m},20000\n", "utf-8")
    nurture(stack, "costs", "import", str(costs))
    sales = json.loads(nurture(stack, "report", "funnel", "--json"))["sales"]
    [webinar] = sales["by_source"]
    assert (webinar["accepted"], webinar["customers"], webinar["won"]) == (1, 1, 60000.0)
    assert webinar["romi"] == 3.0


@pytest.mark.asyncio
async def test_a_lead_returned_in_the_browser_goes_back_to_nurture(
    stack: dict[str, Any], smtp_server: SmtpServer, page: Any
) -> None:
    demo_request(stack, "bo@corp.example")
    text = mail_to(smtp_server, "amy@acme.example")

    await page.goto(link(text, "Return"))
    await page.select_option("select[name=reason]", "no budget")
    await page.get_by_role("button", name="Return · 退回").click()
    await page.wait_for_selector("text=returned to nurture")

    assert mql(stack, "bo@corp.example").return_reason == "no budget"
    with stack["sessions"]() as session:
        entered = session.scalars(
            select(Campaign.name)
            .join(CampaignVersion, CampaignVersion.campaign_id == Campaign.id)
            .join(Enrollment, Enrollment.campaign_version_id == CampaignVersion.id)
            .join(Lead, Lead.id == Enrollment.lead_id)
            .where(Lead.email == "bo@corp.example")
        ).all()
    assert entered == ["Recycle"]


@pytest.mark.asyncio
async def test_an_mql_nobody_accepts_moves_to_the_next_member(
    stack: dict[str, Any], smtp_server: SmtpServer
) -> None:
    demo_request(stack, "cy@corp.example")
    mail_to(smtp_server, "amy@acme.example")

    with stack["sessions"]() as session, session.begin():  # an hour passes, as far as it knows
        session.execute(
            update(MqlRecord).values(sla_due_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    text = mail_to(smtp_server, "tom@acme.example")

    assert "not accepted within 1 hour by amy@acme.example" in " ".join(text.split())
    assert mql(stack, "cy@corp.example").owner == "tom@acme.example"


def test_nurture_run_hands_mqls_to_sales_and_reassigns_them_on_its_fast_clock(
    tmp_path: Path,
) -> None:
    # Given campaigns where a demo lead's first open makes it an MQL, and an SLA of an hour
    folder = tmp_path / "campaigns"
    (folder / "templates" / "sales").mkdir(parents=True)
    (folder / "templates" / "hello.email.j2").write_text(
        '{% block subject %}Hello{% endblock %}{% block text %}Hi <a href="https://acme.example">'
        'there</a>{% endblock %}{% block html %}<p>Hi <a href="https://acme.example">there</a>'
        "</p>{% endblock %}",
        encoding="utf-8",
    )
    template = REPO / "campaigns" / "templates" / "sales" / "new-mql.email.j2"
    (folder / "templates" / "sales" / "new-mql.email.j2").write_text(template.read_text("utf-8"))
    hello = 'campaign "Hello"\n  enroll when lead created\n  send email "hello"\n  wait 3 days\n'
    scoring = 'scoring "Opens"\n  interest:\n    +30 per open\n  mql when interest >= 30\n'
    routing = ROUTING.replace(
        'notify by email "sales/new-mql" and webhook "crm/mql"', 'notify by email "sales/new-mql"'
    )
    for name, text in {"hello": hello, "scoring": scoring, "routing": routing}.items():
        (folder / f"{name}.nurture").write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    env["NURTURE_BASE_URL"] = f"http://127.0.0.1:{free_port()}"

    # When it runs two days of campaign time at a day a second, with demo leads
    args = [
        "run",
        "campaigns",
        "--speed",
        "86400",
        "--for",
        "2d",
        "--demo-leads",
        "12",
        "--seed",
        "5",
    ]
    done = subprocess.run(
        [str(Path(sys.executable).with_name("nurture")), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    # Then the readers' opens made MQLs, owners were mailed, and the SLA moved them on
    assert done.returncode == 0, done.stdout + done.stderr
    said = re.search(r"(\d+) MQLs handed to sales; (\d+) reassigned", done.stdout)
    assert said is not None, done.stdout
    mqls, reassigned = int(said.group(1)), int(said.group(2))
    assert mqls >= 1 and reassigned >= 1
    assert f"notices to owners: {mqls + reassigned} sent" in done.stdout
    moves = re.findall(r"SLA: \S+ not accepted within 1 hour by (\S+) → (\S+) \(", done.stdout)
    assert len([m for m in moves if m[1] != "nobody"]) == reassigned, done.stdout
    assert all(before != after for before, after in moves)
    owners_mail = sorted((tmp_path / "outbox").glob("notice-*.eml"))
    subjects = {
        str(BytesParser(policy=default).parsebytes(f.read_bytes())["Subject"]) for f in owners_mail
    }
    assert len(owners_mail) == mqls + reassigned
    assert all(subject.startswith("New MQL for you: ") for subject in subjects)
