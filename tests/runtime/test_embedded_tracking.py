"""`nurture run`'s tracking service: built from the same settings as the rest of the runtime."""

from __future__ import annotations

import socket

import httpx

from nurture.runtime.embedded import _tracking
from nurture.runtime.process import Runtime
from tests.runtime.helpers import Driver

API_KEY = "embedded-test-api-key-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_the_embedded_service_cleans_leads_by_the_configured_rules(runtime: Runtime) -> None:
    # Given `nurture run`'s settings naming a competitor's domain and an API key
    settings = runtime.settings.with_changes(
        competitor_domains=("rival.cn",),
        api_key=API_KEY,
        base_url=f"http://127.0.0.1:{free_port()}",
    )
    tracking = _tracking(runtime, settings, Driver(runtime).hooks, print)
    assert tracking is not None
    url = tracking.start()
    try:
        # When a competitor and a prospect are posted to its lead API over HTTP
        answer = httpx.post(
            f"{url}/api/leads",
            headers={"Authorization": f"Bearer {API_KEY}"},
            json=[{"email": "spy@sales.rival.cn"}, {"email": "ada@analytical-engines.io"}],
            timeout=10,
        )
    finally:
        tracking.stop()

    # Then the competitor is skipped with its reason and the prospect is kept
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["skipped"] == [{"index": 0, "reason": "competitor's email domain rival.cn"}]
    assert len(body["created"]) == 1
