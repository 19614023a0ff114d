"""Owners hear of their MQL at once, with the whole story: email over real SMTP, the CRM
webhook and WeCom over real HTTP; the accept / return links answer only by POST."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine, select
from sqlalchemy import text as sql
from sqlalchemy.exc import OperationalError

from channels import OutboxChannel, WebhookChannel
from nurture.config import Settings
from nurture.handoff import sla
from nurture.models import MqlRecord, Notice
from nurture.runtime import broker as brokers
from nurture.runtime import process
from nurture.runtime.embedded import _stub_broker
from nurture.runtime.notifying import notice_sender
from nurture.runtime.process import Runtime
from nurture.runtime.sending import make_channels
from nurture.store import Rules
from nurture.tokens import TokenSigner
from nurture.tracking import create_app
from tests.channels.provider import SECRET as WEBHOOK_SECRET
from tests.channels.provider import Provider
from tests.channels.servers import SmtpServer
from tests.handoff.test_handoff_store import east_lead, qualify
from tests.handoff.test_route import deployed, routing
from tests.store.test_scoring_store import MODEL

KEY = "notices-test-secret-0123456789abcdef"
NOW = datetime.now(UTC).replace(microsecond=0)

EMAIL = """\
{% block subject %}New MQL: {{ lead.name }} at {{ lead.company }}{% endblock %}
{% block html %}<p>{{ owner.name }}: {{ lead.name }} is yours ({{ mql.reason }}).</p>
<ul>{% for e in timeline %}<li>{{ e.at }} {{ e.what }}</li>{% endfor %}</ul>
<a href="{{ links.accept }}">Accept</a> <a href="{{ links.return }}">Return</a>{% endblock %}
{% block text %}{{ lead.name }}: {{ mql.cause }}. Accept: {{ links.accept }}{% endblock %}
"""
WEBHOOK = """{"email": "{{ lead.email }}", "owner": "{{ owner.email }}", "cause": "{{ mql.cause }}",
 "timeline": {{ timeline | tojson }}, "accept": "{{ links.accept }}"}"""
WECOM = """{"msgtype": "text", "text": {"content": "New MQL: {{ lead.name }}"}}"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name, text in {
        "sales/new-mql.email.j2": EMAIL,
        "crm/mql.webhook.j2": WEBHOOK,
        "sales/card.wecom.j2": WECOM,
    }.items():
        path = tmp_path / "campaigns" / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path / "campaigns"


def notify_routing(folder: Path) -> dict[str, Any]:
    crew = routing()
    crew["teams"]["east"][1] = {**crew["teams"]["east"][1], "wecom": "wangfang"}
    return {
        **crew,
        "path": str(folder / "routing.nurture"),
        "notify": [
            {"channel": "email", "template": "sales/new-mql"},
            {"channel": "webhook", "template": "crm/mql"},
            {"channel": "wecom", "template": "sales/card"},
        ],
        "return_reasons": ["not a fit", "no budget"],
    }


@pytest.fixture
def setup(
    migrated_url: str,
    migrated_engine: Engine,
    folder: Path,
    smtp_server: SmtpServer,
    provider: Provider,
) -> Iterator[tuple[Runtime, Rules]]:
    settings = Settings(
        database_url=migrated_url,
        secret_key=KEY,
        smtp_url=smtp_server.url(),
        sender="Acme <news@acme.test>",
        base_url="https://t.acme.test",
        crm_webhook_url=f"{provider.base_url}/hook/crm",
        wecom_url=f"{provider.base_url}/hook/wecom",
        webhook_secret=WEBHOOK_SECRET,
    )
    runtime = Runtime.start(settings)
    body = notify_routing(folder)
    with runtime.sessions() as session, session.begin():
        session.add(deployed(body))
    yield runtime, Rules(MODEL, body)
    runtime.close()


def make_mql(runtime: Runtime, rules: Rules, email: str, at: datetime = NOW) -> MqlRecord:
    with runtime.sessions() as session, session.begin():
        lead = east_lead(session, email)
        lead.first_name, lead.company = "Ada", "Analytical Engines"
        mql = qualify(session, lead, rules, at)
        assert mql is not None
        session.expunge(mql)
        return mql


def statuses(runtime: Runtime) -> list[tuple[str, str, str]]:
    with runtime.sessions() as session:
        rows = session.scalars(select(Notice).order_by(Notice.id))
        return [(n.kind, n.channel, n.status) for n in rows]


def test_a_new_mql_reaches_its_owner_by_email_crm_webhook_and_wecom(
    setup: tuple[Runtime, Rules], smtp_server: SmtpServer, provider: Provider
) -> None:
    runtime, rules = setup
    make_mql(runtime, rules, "ada@corp.com")
    assert statuses(runtime) == [("assigned", c, "pending") for c in ("email", "webhook", "wecom")]

    sent = notice_sender(runtime).send_pending(10)

    assert sent == 3
    assert statuses(runtime) == [("assigned", c, "sent") for c in ("email", "webhook", "wecom")]
    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ["wang.fang@t.io"]
    assert mail.message["Subject"] == "New MQL: Ada at Analytical Engines"
    html = mail.message.get_body(("html",)).get_content()
    assert "round robin" in html and "webinar_attended" in html
    assert "https://t.acme.test/s/" in html and "/o/" not in html  # no tracking to sales
    crm, wecom = sorted(provider.requests, key=lambda r: r.path)
    assert crm.path == "/hook/crm" and "x-nurture-signature" in crm.headers
    assert crm.json["email"] == "ada@corp.com" and crm.json["owner"] == "wang.fang@t.io"
    assert "MQL rule" in crm.json["cause"] and len(crm.json["timeline"]) >= 4
    assert wecom.json["text"]["content"] == "New MQL: Ada"
    assert notice_sender(runtime).send_pending(10) == 0  # nothing is sent twice


def test_a_notice_that_cannot_be_built_fails_with_its_reason(
    setup: tuple[Runtime, Rules], smtp_server: SmtpServer
) -> None:
    runtime, rules = setup
    rules = Rules(MODEL, {**rules.routing, "notify": [{"channel": "email", "template": "nope"}]})
    make_mql(runtime, rules, "ada@corp.com")

    assert notice_sender(runtime).send_pending(10) == 0

    with runtime.sessions() as session:
        notice = session.scalars(select(Notice)).one()
    assert notice.status == "failed"
    assert notice.error is not None and "no template `nope`" in notice.error
    assert smtp_server.messages == []


def test_the_owner_is_reminded_before_the_deadline_once(setup: tuple[Runtime, Rules]) -> None:
    runtime, rules = setup
    routing_ = {**rules.routing, "sla": {**rules.routing["sla"], "remind_seconds": 4 * 3600}}
    mql = make_mql(runtime, Rules(MODEL, routing_), "ada@corp.com")

    with runtime.sessions() as session, session.begin():
        assert sla.remind(session, NOW + timedelta(hours=19), 10, routing_) == []
        assert sla.remind(session, NOW + timedelta(hours=21), 10, routing_) == [mql.id]
        assert sla.remind(session, NOW + timedelta(hours=22), 10, routing_) == []

    assert [s[0] for s in statuses(runtime)].count("reminder") == 3


def answer_link(runtime: Runtime) -> str:
    with runtime.sessions() as session:
        notice = session.scalars(select(Notice)).first()
        assert notice is not None
        return f"/s/{TokenSigner(KEY).answer_token(notice.assignment_id)}"


@pytest_asyncio.fixture
async def service(setup: tuple[Runtime, Rules]) -> AsyncIterator[httpx.AsyncClient]:
    """The tracking service, in-process."""
    runtime, _rules = setup
    app = create_app(runtime.sessions, TokenSigner(KEY), api_key=None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


def mql_row(runtime: Runtime) -> MqlRecord:
    with runtime.sessions() as session:
        record = session.scalars(select(MqlRecord)).one()
        session.expunge(record)
        return record


@pytest.mark.asyncio
async def test_the_accept_link_shows_a_page_and_only_a_post_accepts(
    setup: tuple[Runtime, Rules], service: httpx.AsyncClient
) -> None:
    runtime, rules = setup
    make_mql(runtime, rules, "ada@corp.com")
    link = answer_link(runtime)

    page = await service.get(link)
    assert page.status_code == 200
    assert "Analytical Engines" in page.text and 'value="no budget"' in page.text
    assert mql_row(runtime).accepted_at is None  # a GET (a mail scanner) changes nothing

    done = await service.post(link, data={"action": "accept"})

    assert done.status_code == 200 and "accepted by wang.fang@t.io" in done.text
    assert mql_row(runtime).accepted_at is not None


@pytest.mark.asyncio
async def test_the_return_form_needs_a_reason_and_sends_the_lead_back(
    setup: tuple[Runtime, Rules], service: httpx.AsyncClient
) -> None:
    runtime, rules = setup
    make_mql(runtime, rules, "ada@corp.com")
    link = answer_link(runtime)

    missing = await service.post(link, data={"action": "return", "reason": "other", "other": " "})
    assert missing.status_code == 400 and "needs a reason" in missing.text
    assert mql_row(runtime).returned_at is None

    done = await service.post(link, data={"action": "return", "reason": "no budget"})

    assert done.status_code == 200 and "returned to nurture" in done.text
    assert mql_row(runtime).return_reason == "no budget"
    again = await service.post(link, data={"action": "accept"})
    assert again.status_code == 409 and "returned to nurture already" in again.text


@pytest.mark.asyncio
async def test_a_forged_expired_or_reassigned_link_answers_nothing(
    setup: tuple[Runtime, Rules], service: httpx.AsyncClient
) -> None:
    runtime, rules = setup
    make_mql(runtime, rules, "ada@corp.com", NOW - timedelta(hours=30))
    link = answer_link(runtime)
    forged = link[:-2] + ("AA" if not link.endswith("AA") else "BB")
    old = TokenSigner(KEY, clock=lambda: NOW - timedelta(days=15)).answer_token(1)

    assert (await service.get(forged)).status_code == 404
    assert (await service.post(f"/s/{old}", data={"action": "accept"})).status_code == 404
    with runtime.sessions() as session, session.begin():  # the SLA ran out: li.na has it now
        assert sla.sweep(session, NOW, 10, rules.routing) != []
    refused = await service.post(link, data={"action": "accept"})

    assert refused.status_code == 409 and "handed to li.na@t.io" in refused.text
    assert mql_row(runtime).accepted_at is None
    assert json.dumps(statuses(runtime)).count("assigned") == 6  # wang.fang's, then li.na's


def test_a_committed_mql_reaches_its_owner_through_a_worker_without_the_scheduler(
    setup: tuple[Runtime, Rules], smtp_server: SmtpServer, provider: Provider
) -> None:
    # Given a worker on the in-process broker, booted on this runtime
    runtime, rules = setup
    broker = _stub_broker()
    broker.flush_all()
    import nurture.runtime.actors  # noqa: F401  (declares the actors on the stub broker)

    process.install(runtime)
    worker = dramatiq.Worker(broker, queues={brokers.QUEUE}, worker_threads=1)
    worker.start()  # boots the runtime: committed notices go to `send_notices`
    try:
        # When an event makes a lead an MQL and its transaction commits
        make_mql(runtime, rules, "ada@corp.com")
        broker.join(brokers.QUEUE, timeout=30_000)
        worker.join()
    finally:
        worker.stop()
        process.install(None)
        broker.flush_all()

    # Then the owner's email and the CRM's webhook went out, with no scheduler tick
    assert [m.rcpt_tos for m in smtp_server.messages] == [["wang.fang@t.io"]]
    assert statuses(runtime) == [("assigned", c, "sent") for c in ("email", "webhook", "wecom")]


@pytest.mark.asyncio
async def test_a_configured_crm_webhook_is_called_in_the_embedded_default_too(
    tmp_path: Path,
) -> None:
    settings = Settings(outbox=tmp_path, crm_webhook_url="http://127.0.0.1:9/crm")

    made = make_channels(settings)

    assert isinstance(made["email"], OutboxChannel)
    assert isinstance(made["webhook"], WebhookChannel)
    for channel in {id(c): c for c in made.values()}.values():
        await channel.aclose()


SLOW_EMAIL = """\
{% block subject %}New MQL{% endblock %}
{% block text %}{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}\
{% endfor %}{{ links.accept }}{% endblock %}
"""


def writable_within(url: str, engine: Engine, seconds: float) -> bool:
    """Whether a writer gets the notices' rows within `seconds` (no lock held meanwhile)."""
    if url.startswith("sqlite"):
        connection = sqlite3.connect(url.partition(":///")[2], timeout=seconds)
        connection.isolation_level = None
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError as e:
            assert "database is locked" in str(e)
            return False
        finally:
            connection.close()
    try:
        with engine.begin() as connection:
            connection.execute(sql(f"SET LOCAL lock_timeout = '{int(seconds * 1000)}ms'"))
            connection.execute(sql("SELECT id FROM notices FOR UPDATE"))
        return True
    except OperationalError as e:
        assert "lock timeout" in str(e)
        return False


def test_a_slow_notice_template_fails_with_its_reason_and_holds_no_lock(
    setup: tuple[Runtime, Rules],
    folder: Path,
    migrated_url: str,
    migrated_engine: Engine,
    provider: Provider,
) -> None:
    # Given an email notice whose template renders until its limit of 2 s, and a webhook one
    runtime, rules = setup
    (folder / "templates" / "sales" / "slow.email.j2").write_text(SLOW_EMAIL, encoding="utf-8")
    notify = [
        {"channel": "email", "template": "sales/slow"},
        {"channel": "webhook", "template": "crm/mql"},
    ]
    rules = Rules(MODEL, {**rules.routing, "notify": notify})
    make_mql(runtime, rules, "ada@corp.com")
    limited = Runtime.start(runtime.settings.with_changes(render_seconds=2))
    try:
        # When they are sent, while a writer keeps taking the notices' rows
        sender = threading.Thread(target=notice_sender(limited).send_pending, args=(10,))
        assert writable_within(migrated_url, migrated_engine, 0.5)  # connected before
        sender.start()
        probes = []
        while sender.is_alive():
            probes.append(writable_within(migrated_url, migrated_engine, 0.5))
            time.sleep(0.05)
        sender.join()
    finally:
        limited.close()

    # Then no lock was held while the template rendered
    assert len(probes) >= 2 and all(probes), probes
    # and the slow one failed with the reason, the webhook went out
    with runtime.sessions() as session:
        notices = {n.channel: n for n in session.scalars(select(Notice))}
    assert notices["webhook"].status == "sent"
    assert notices["email"].status == "failed"
    assert "rendering took longer than 2 s" in (notices["email"].error or "")
    assert [r.path for r in provider.requests] == ["/hook/crm"]
