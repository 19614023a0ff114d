"""``nurture bounces`` as a process of its own: it listens, records a DSN sent to it over SMTP,
logs one line per message, and refuses to start without a bounce domain."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from nurture import db
from nurture.deliverability.verp import Verp
from nurture.models import Event
from tests.deliverability.conftest import BOUNCE_DOMAIN, SECRET, make_delivery, smtp_send
from tests.deliverability.messages import auto_reply, dsn
from tests.live import free_port, nurture_process, wait_for


def _env(url: str, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    env.update({"NURTURE_DATABASE_URL": url, "NURTURE_SECRET_KEY": SECRET, **more})
    return env


def test_the_listener_records_a_dsn_and_logs_what_it_did(sqlite_url: str, tmp_path: Path) -> None:
    # Given a database with one delivery, and the listener running on it
    db.upgrade(sqlite_url)
    engine = db.make_engine(sqlite_url)
    with db.session_factory(engine)() as session, session.begin():
        delivery = make_delivery(session)
        delivery_id, lead_id = delivery.id, delivery.lead_id
    port = free_port()
    log = tmp_path / "bounces.log"
    env = _env(sqlite_url, NURTURE_BOUNCE_DOMAIN=BOUNCE_DOMAIN)
    to = Verp(BOUNCE_DOMAIN, [SECRET]).address(delivery_id)
    with nurture_process(["bounces", "--port", str(port)], env, log):
        wait_for("the listener", lambda: "listening on" in log.read_text(), 60, log)

        # When a DSN and an out-of-office answer come to the return path
        assert "recorded bounced" in smtp_send(port, dsn(to), to)
        assert "ignored" in smtp_send(port, auto_reply(to), to, sender="ada@corp.com")

    # Then the bounce is recorded, the auto-reply is not, and each has its log line
    with db.session_factory(engine)() as session:
        recorded = session.execute(select(Event.type, Event.lead_id)).all()
    engine.dispose()
    assert [tuple(r) for r in recorded] == [("bounced_hard", lead_id)]
    text = log.read_text()
    assert f"recorded hard bounced of delivery {delivery_id} (5.1.1 ada@corp.com" in text
    assert "ignored a message from ada@corp.com: an auto-reply" in text
    assert "Traceback" not in text
    # one line a message, none for each SMTP command
    lines = [line for line in text.splitlines() if " INFO " in line]
    assert len(lines) == 2, text


def test_without_a_bounce_domain_it_says_what_to_set(sqlite_url: str) -> None:
    command = str(Path(sys.executable).with_name("nurture"))
    done = subprocess.run(
        [command, "bounces"], env=_env(sqlite_url), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "NURTURE_BOUNCE_DOMAIN is not set" in done.stderr and "Traceback" not in done.stderr
