"""The embedded default (no SMTP URL) sends SMS, WeChat and webhooks to the providers that are
configured, the rest to the outbox, says so as it starts, and names what is missing in words."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from nurture.cli import app
from nurture.config import Settings, parse_domain_rates
from nurture.engine.clock import VirtualClock
from nurture.runtime.deploying import deploy_sources
from nurture.runtime.process import Runtime
from nurture.runtime.sending import destinations
from tests.channels.provider import SECRET, TOKEN, Provider, provider_app
from tests.live import serving
from tests.runtime.conftest import add_lead
from tests.runtime.helpers import Driver, deliveries

EVERY_CHANNEL = """\
campaign "Every channel"
  enroll when lead created
  send email "t/e"
  send sms "t/s"
  send wechat "t/w"
  send webhook "t/h"
"""
TEMPLATES = {
    "t/e.email.j2": "{% block subject %}Hi{% endblock %}{% block text %}Hi{% endblock %}",
    "t/s.sms.j2": "Hi {{ lead.first_name }}",
    "t/w.wechat.j2": '{"template_id": "T1", "data": {"first": "Hi {{ lead.first_name }}"}}',
    "t/h.webhook.j2": '{"lead": "{{ lead.email }}"}',
}


@pytest.fixture
def provider() -> Iterator[Provider]:
    """The fake SMS, WeChat and webhook provider under uvicorn."""
    provider = Provider()
    with serving(provider_app(provider), "provider") as url:
        provider.reset(url)
        yield provider


def deploy(sessions: sessionmaker[Session], folder: Path, clock: VirtualClock, source: str) -> None:
    for name, text in TEMPLATES.items():
        path = folder / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (folder / "c.nurture").write_text(source)
    deploy_sources(sessions, {str(folder / "c.nurture"): source}, clock.now())


def run(settings: Settings, clock: VirtualClock) -> None:
    """Every due touch, sent through the channels `settings` make (no test doubles)."""
    runtime = Runtime.start(settings, clock)
    try:
        driver = Driver(runtime)
        for _ in range(6):
            driver.tick()
    finally:
        runtime.close()


def test_configured_providers_are_called_without_smtp(
    settings: Settings,
    sessions: sessionmaker[Session],
    clock: VirtualClock,
    tmp_path: Path,
    provider: Provider,
) -> None:
    # Given the embedded default (no SMTP URL) with an SMS, a WeChat and a webhook provider
    deploy(sessions, tmp_path / "c", clock, EVERY_CHANNEL)
    add_lead(sessions, phone="+8613912345678", messaging_id="o-lin")
    configured = settings.with_changes(
        sms_url=f"{provider.base_url}/sms",
        sms_token=TOKEN,
        wechat_url=f"{provider.base_url}/wechat?access_token={TOKEN}",
        webhook_url=f"{provider.base_url}/hook/campaign",
        webhook_secret=SECRET,
    )

    # When the campaign runs
    run(configured, clock)

    # Then SMS, WeChat and the webhook went to the provider, and only the email to the outbox
    assert sorted(r.path for r in provider.requests) == ["/hook/campaign", "/sms", "/wechat"]
    assert [p.suffix for p in sorted(configured.outbox.iterdir())] == [".eml"]
    assert [(d.channel, d.status) for d in deliveries(sessions)] == [
        ("email", "sent"),
        ("sms", "sent"),
        ("wechat", "sent"),
        ("webhook", "sent"),
    ]
    # And the start-up line's words say so, without the token in the WeChat URL
    assert destinations(configured) == {
        "email": f"the outbox folder {configured.outbox}/",
        "SMS": f"{provider.base_url}/sms",
        "WeChat": f"{provider.base_url}/wechat",
        "webhooks": f"{provider.base_url}/hook/campaign",
    }


def test_without_providers_everything_goes_to_the_outbox(
    settings: Settings, sessions: sessionmaker[Session], clock: VirtualClock, tmp_path: Path
) -> None:
    deploy(sessions, tmp_path / "c", clock, EVERY_CHANNEL)
    add_lead(sessions, messaging_id="o-lin")

    run(settings, clock)

    kinds = (".eml", ".sms.json", ".wechat.json", ".webhook.json")
    files = sorted(k for p in settings.outbox.iterdir() for k in kinds if p.name.endswith(k))
    assert files == [".eml", ".sms.json", ".webhook.json", ".wechat.json"]
    [hook] = settings.outbox.glob("*.webhook.json")
    assert json.loads(hook.read_text())["to"] == "outbox:webhook"
    assert {d.status for d in deliveries(sessions)} == {"sent"}
    assert set(destinations(settings).values()) == {f"the outbox folder {settings.outbox}/"}


NO_ADDRESSES = """\
campaign "Nowhere"
  enroll when lead created
  send sms "t/s"
  send wechat "t/w"
"""


def test_a_missing_address_is_named_in_a_sentence(
    settings: Settings, sessions: sessionmaker[Session], clock: VirtualClock, tmp_path: Path
) -> None:
    # Given a lead with no phone number and no openid
    deploy(sessions, tmp_path / "c", clock, NO_ADDRESSES)
    lead = add_lead(sessions, phone=None)

    run(settings, clock)

    details = [(d.channel, d.error) for d in deliveries(sessions)]
    assert details[0] == ("sms", f"lead {lead} has no phone number")
    if len(details) > 1:  # the campaign goes on past a touch with nowhere to go
        assert details[1] == ("wechat", f"lead {lead} has no WeChat openid (messaging_id)")


def test_production_names_the_channels_that_go_nowhere() -> None:
    settings = Settings(smtp_url="smtp://mail.acme.test:587?from=news@acme.test")
    assert destinations(settings) == {
        "email": "SMTP mail.acme.test:587",
        "SMS": "nowhere",
        "WeChat": "nowhere",
        "webhooks": "nowhere",
    }


NOTIFY = """\
campaign "Hot"
  enroll when lead created
  mql
  notify sales "t/e"
"""


def test_a_sales_notice_with_nowhere_to_go_says_why(
    settings: Settings, sessions: sessionmaker[Session], clock: VirtualClock, tmp_path: Path
) -> None:
    # Given a lead with no owner, and no NURTURE_SALES_EMAIL
    deploy(sessions, tmp_path / "c", clock, NOTIFY)
    lead = add_lead(sessions)

    run(settings, clock)

    [notice] = deliveries(sessions)
    assert notice.error == (
        f"lead {lead} has no owner with an email address and NURTURE_SALES_EMAIL is not set: "
        "nowhere to send its sales email"
    )


def test_nurture_run_says_where_each_channel_goes(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "c.nurture").write_text(NOTIFY)
    (folder / "templates" / "t").mkdir(parents=True)
    (folder / "templates" / "t" / "e.email.j2").write_text(TEMPLATES["t/e.email.j2"])
    clean = {k: "" for k in os.environ if k.startswith("NURTURE_")}
    env = {
        **clean,
        "NURTURE_DATABASE_URL": f"sqlite:///{tmp_path / 'n.db'}",
        "NURTURE_OUTBOX": str(tmp_path / "out"),
        "NURTURE_SMS_URL": "https://sms.example/send?key=secret",
    }
    result = CliRunner().invoke(
        app, ["run", "--no-tracking", "--speed", "600", "--for", "1m", str(folder)], env=env
    )
    first = result.output.splitlines()[0]
    assert result.exit_code == 0, result.output
    assert (
        f"email to the outbox folder {tmp_path / 'out'}/, SMS to https://sms.example/send, "
        in first
    )
    assert "WeChat to the outbox folder" in first and "secret" not in first


def test_the_start_up_line_gives_the_domain_rates(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'n.db'}",
        outbox=tmp_path / "out",
        domain_rates=parse_domain_rates("qq.com=20/min,*=200/hour"),
    )
    assert destinations(settings)["email"] == (
        f"the outbox folder {tmp_path / 'out'}/ (at most qq.com=20/60s, *=200/3600s)"
    )
