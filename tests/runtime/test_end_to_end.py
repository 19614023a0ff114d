"""End to end: the example welcome campaign, a real SMTP server and the tracking service.

A lead posted to the tracking API enrolls (``on_lead``), gets the welcome
email over SMTP (aiosmtpd), opens it through the real pixel URL of the
tracking service under uvicorn (``on_wake``), and the flow takes the opened
branch; the one-click unsubscribe of its ``List-Unsubscribe`` header stops
everything. Workers are Dramatiq threads on the stub broker; time is a
virtual clock that the tracking service shares.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import dramatiq
import httpx
import pytest
import uvicorn
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nurture.config import Settings
from nurture.engine.clock import VirtualClock
from nurture.models import Delivery, Enrollment, Lead, Tag
from nurture.runtime import broker as brokers
from nurture.runtime import process
from nurture.runtime.deploying import campaign_files, deploy_sources
from nurture.runtime.embedded import _stub_broker
from nurture.runtime.keys import Key, message_id
from nurture.runtime.process import Hooks, Runtime
from nurture.runtime.scheduler import Scheduler
from nurture.tokens import TokenSigner
from nurture.tracking import create_app
from tests.runtime.conftest import SECRET
from tests.runtime.services import SmtpServer

CAMPAIGNS = Path(__file__).parents[2] / "campaigns"
API_KEY = "runtime-test-api-key-0123456789"


@dataclass
class Stack:
    """Everything running: tracking service, workers, scheduler, SMTP server."""

    url: str
    runtime: Runtime
    broker: StubBroker
    scheduler: Scheduler
    smtp: SmtpServer
    clock: VirtualClock

    def settle(self) -> None:
        """Wait until the workers have run everything enqueued."""
        self.broker.join(brokers.QUEUE, timeout=30_000)

    def tick(self) -> None:
        self.scheduler.tick()
        self.settle()


@pytest.fixture
def stack(
    sessions: sessionmaker[Session], clock: VirtualClock, smtp_server: SmtpServer, db_url: str
) -> Iterator[Stack]:
    deploy_sources(sessions, campaign_files([CAMPAIGNS]), clock.now())
    broker = _stub_broker()
    broker.flush_all()
    import nurture.runtime.actors  # noqa: F401

    queue = brokers.Queue(broker)
    hooks = Hooks(sessions, clock, queue)
    app = create_app(
        sessions,
        TokenSigner(SECRET, clock=clock.now),
        api_key=API_KEY,
        on_wake=hooks.on_wake,
        on_lead=hooks.on_lead,
        clock=clock,
    )
    server, thread, url = _serve(app)
    settings = Settings(
        database_url=db_url,
        smtp_url=smtp_server.url(),
        secret_key=SECRET,
        base_url=url,
        sender="Tidewater <news@acme.test>",
    )
    runtime = Runtime.start(settings, clock)
    process.install(runtime)
    scheduler = Scheduler(runtime.sessions, clock, settings, queue, graphs=runtime.graphs)
    worker = dramatiq.Worker(broker, queues={brokers.QUEUE}, worker_threads=2)
    worker.start()
    try:
        yield Stack(url, runtime, broker, scheduler, smtp_server, clock)
    finally:
        worker.stop()
        process.install(None)
        runtime.close()
        server.should_exit = True
        thread.join(timeout=10)


def _serve(app: object) -> tuple[uvicorn.Server, threading.Thread, str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        yield client


def test_welcome_open_branch_and_unsubscribe(stack: Stack, http: httpx.Client) -> None:
    # Given a lead posted to the API (a marketer, on a Monday morning)
    answer = http.post(
        "/api/leads",
        headers={"Authorization": f"Bearer {API_KEY}"},
        json={
            "email": "ada.lovelace@analytical-engines.io",
            "first_name": "Ada",
            "company": "Analytical Engines",
            "attributes": {"persona": "marketer"},
        },
    )
    assert answer.status_code == 200, answer.text
    [lead_id] = answer.json()["created"]
    stack.settle()

    # Then the welcome email arrived over SMTP, rendered, with its headers
    [welcome] = stack.smtp.wait_for(1)
    email = welcome.message
    assert email["Subject"] == "Welcome, Ada"
    assert welcome.rcpt_tos == ["ada.lovelace@analytical-engines.io"]
    with stack.runtime.sessions() as session:
        first = session.scalars(select(Delivery)).one()
    key = Key(first.enrollment_id, first.step_id, first.iteration)
    assert email["Message-ID"] == first.message_id == message_id(key, "acme.test", SECRET)
    header = str(email["List-Unsubscribe"]).strip()
    unsubscribe = re.fullmatch(r"<(http://127\.0\.0\.1:\d+/u/[^>]+)>", header)
    assert unsubscribe is not None, header
    html = email.get_body(("html",)).get_content()
    pixel = re.search(r'<img src="(http://127\.0\.0\.1:\d+/o/[^"]+)"', html)
    assert pixel is not None and "Ada" in html

    # When the lead opens it an hour later: the real pixel, through the service
    stack.clock.advance(timedelta(hours=1))
    assert http.get(pixel.group(1)).headers["content-type"] == "image/gif"
    stack.settle()

    # Then the opened branch ran at once: the deep-dive email and the tag
    messages = stack.smtp.wait_for(2)
    assert len(messages) == 2
    assert messages[1].message["Message-ID"] != email["Message-ID"]
    with stack.runtime.sessions() as session:
        tags = session.scalars(select(Tag.tag).where(Tag.lead_id == lead_id)).all()
        templates = session.scalars(select(Delivery.template).order_by(Delivery.id)).all()
    assert "engaged:deep" in tags
    assert templates == ["welcome/marketer", "content/deep-dive"]

    # When the lead unsubscribes with one click (RFC 8058), and a week passes
    done = http.post(unsubscribe.group(1), data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    stack.settle()
    stack.clock.advance(timedelta(days=8))
    stack.tick()

    # Then nothing more is sent and the enrollment has left
    time.sleep(0.2)
    assert len(stack.smtp.messages) == 2
    with stack.runtime.sessions() as session:
        lead = session.get(Lead, lead_id)
        welcome_enrollment = session.scalars(
            select(Enrollment).where(Enrollment.lead_id == lead_id).order_by(Enrollment.id)
        ).first()
    assert lead is not None and lead.unsubscribed_at is not None
    assert welcome_enrollment is not None
    assert (welcome_enrollment.state, welcome_enrollment.exit_reason) == ("exited", "suppressed")
