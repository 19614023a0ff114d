"""`nurture serve` turns on the ESP webhooks its settings name, and no others."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

import httpx

from nurture import db
from nurture.engine.clock import VirtualClock
from tests.deliverability.esp.conftest import sample
from tests.live import free_port, healthy, nurture_process, wait_for
from tests.tracking.conftest import Seed, T

KEY = "key-serve-0123456789"


def test_nurture_serve_records_mailgun_events_with_the_configured_key(
    sqlite_url: str, tmp_path: Path
) -> None:
    db.upgrade(sqlite_url)
    engine = db.make_engine(sqlite_url)
    seed = Seed(db.session_factory(engine), VirtualClock(T))
    touch = seed.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    env.update(NURTURE_DATABASE_URL=sqlite_url, NURTURE_MAILGUN_SIGNING_KEY=KEY)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    payload = sample("mailgun_failed_permanent.json")
    payload["event-data"]["user-variables"]["nurture_delivery"] = str(touch.delivery_id)
    timestamp, token = str(int(time.time())), secrets.token_hex(25)
    digest = hmac.new(KEY.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    payload["signature"] = {"timestamp": timestamp, "token": token, "signature": digest}

    log = tmp_path / "serve.log"
    with nurture_process(["serve", "--port", str(port), "--log-level", "warning"], env, log):
        wait_for("nurture serve", lambda: healthy(base), log=log)
        recorded = httpx.post(f"{base}/esp/mailgun", json=payload, timeout=10)
        off = httpx.post(f"{base}/esp/postmark", json=sample("postmark_delivery.json"))

    try:
        assert recorded.status_code == 200, recorded.text
        assert recorded.json() == {"recorded": 1, "duplicates": 0, "unmatched": 0}
        assert [e.type for e in seed.events(touch.lead_id)] == ["bounced_hard"]
        assert off.status_code == 503
        assert "NURTURE_POSTMARK_WEBHOOK_AUTH" in off.json()["errors"][0]["message"]
    finally:
        engine.dispose()
