"""The commands: run, worker, scheduler, report deliveries, deliveries release."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from channels import RecordingChannel
from nurture import db
from nurture.cli import app
from nurture.engine.clock import VirtualClock
from nurture.runtime.database import runtime_engine, sessions_for
from nurture.runtime.deploying import campaign_files, deploy_sources
from nurture.runtime.process import Runtime
from tests.runtime.campaign import write_campaign
from tests.runtime.conftest import add_lead
from tests.runtime.helpers import Driver, ProcessDied, deliveries, dies_on_the_wire
from tests.runtime.services import RabbitServer

REPO = Path(__file__).parents[2]
NURTURE = str(Path(sys.executable).with_name("nurture"))


def invoke(*args: str, **env: str) -> tuple[int, str]:
    clean = {k: "" for k in os.environ if k.startswith("NURTURE_")}
    result = CliRunner().invoke(app, list(args), env={**clean, **env})
    return result.exit_code, result.output


def test_a_scheduler_on_postgresql_needs_the_secret_key(pg_url: str, redis_url: str) -> None:
    code, output = invoke(
        "scheduler", "--once", NURTURE_DATABASE_URL=pg_url, NURTURE_BROKER_URL=redis_url
    )
    assert code == 1
    assert "NURTURE_SECRET_KEY is not set" in output


@pytest.mark.parametrize("command", ["worker", "scheduler"])
def test_workers_and_schedulers_need_a_broker(command: str) -> None:
    code, output = invoke(command)
    assert code == 1
    assert f"nurture {command} needs a broker: set NURTURE_BROKER_URL" in output


def test_a_bad_setting_stops_a_command_with_one_line(tmp_path: Path) -> None:
    code, output = invoke("worker", NURTURE_BATCH_SIZE="many")
    assert code == 1
    assert output.strip() == "error: NURTURE_BATCH_SIZE must be a whole number, got 'many'"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--speed", "inf"], "Invalid value for '--speed'"),
        (["--for", "99999999999999999999d"], "error: --for: '99999999999999999999d' is longer"),
    ],
)
def test_run_refuses_a_speed_or_length_past_the_calendar(option: list[str], message: str) -> None:
    code, output = invoke("run", "--no-tracking", *option, NURTURE_DATABASE_URL="sqlite://")
    assert code == 2
    assert message in output


def test_a_worker_refuses_a_database_without_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    code, output = invoke("worker", NURTURE_DATABASE_URL=url, NURTURE_BROKER_URL="redis://x:1/0")
    assert code == 1 and "run `nurture db upgrade`" in output


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


@pytest.mark.parametrize("command", ["worker", "scheduler", "serve"])
@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_a_broker_that_does_not_answer_is_one_line_naming_it_without_the_password(
    migrated_url: str, command: str, scheme: str
) -> None:
    port = _closed_port()
    url = f"{scheme}://guest:s3cret@127.0.0.1:{port}/" + ("0" if scheme == "redis" else "")
    shown = url.replace(":s3cret@", ":***@")
    args = [command, "--once"] if command == "scheduler" else [command]
    if command == "serve":
        args += ["--port", str(_closed_port())]
    code, output = invoke(
        *args,
        NURTURE_DATABASE_URL=migrated_url,
        NURTURE_BROKER_URL=url,
        NURTURE_SECRET_KEY="cli-test-secret-0123456789abcdef0123456789",
        NURTURE_API_KEY="cli-test-api-key",
    )
    assert code == 1, output
    assert output.startswith(f"error: cannot reach the broker {shown}: "), output
    assert "refused" in output.lower() and "s3cret" not in output
    assert len(output.strip().splitlines()) == 1, output


def test_a_rabbitmq_that_refuses_the_password_says_so(
    migrated_url: str, rabbitmq_server: RabbitServer
) -> None:
    url = rabbitmq_server.url().replace("guest:guest@", "guest:wrong@")
    code, output = invoke(
        "worker",
        NURTURE_DATABASE_URL=migrated_url,
        NURTURE_BROKER_URL=url,
        NURTURE_SECRET_KEY="cli-test-secret-0123456789abcdef0123456789",
    )
    assert code == 1
    shown = url.replace(":wrong@", ":***@")
    assert output.startswith(f"error: cannot reach the broker {shown}: it refused the user"), output
    assert "wrong" not in output.replace(shown, "")


@pytest.mark.parametrize("delivery", ["-1", str(2**64)])
def test_releasing_an_id_no_delivery_can_have_names_it(migrated_url: str, delivery: str) -> None:
    code, output = invoke(
        "deliveries", "release", "--", delivery, NURTURE_DATABASE_URL=migrated_url
    )
    assert code == 1
    assert output.strip() == f"error: cannot release {delivery}: no such delivery"


def test_report_and_release_unknown_deliveries(
    runtime: Runtime, clock: VirtualClock, db_url: str, channel: RecordingChannel
) -> None:
    # Given a touch left unknown by a job that died with it on the wire
    channel._respond = dies_on_the_wire
    driver = Driver(runtime)
    add_lead(runtime.sessions)
    with pytest.raises(ProcessDied):
        driver.tick()
    channel._respond = None
    clock.advance(timedelta(seconds=61))
    driver.tick()
    [row] = deliveries(runtime.sessions)

    # When the operator lists the unknown deliveries
    code, output = invoke("report", "deliveries", "--unknown", NURTURE_DATABASE_URL=db_url)
    assert code == 0, output
    assert row.message_id in output and "ada@client.example" in output
    code, output = invoke(
        "report", "deliveries", "--unknown", "--json", NURTURE_DATABASE_URL=db_url
    )
    [listed] = json.loads(output)
    assert (listed["id"], listed["campaign"], listed["channel"]) == (row.id, "Hello", "email")

    # and releases it (a second release is refused: it is no longer unknown)
    code, output = invoke(
        "deliveries", "release", str(row.id), "--reason", "checked", NURTURE_DATABASE_URL=db_url
    )
    assert code == 0, output
    assert "1 deliveries released for resending; 1 enrollments due now" in output
    code, output = invoke("deliveries", "release", str(row.id), NURTURE_DATABASE_URL=db_url)
    assert code == 1 and f"{row.id}: it is deferred, not unknown" in output
    code, output = invoke("report", "deliveries", "--json", NURTURE_DATABASE_URL=db_url)
    assert json.loads(output) == {"deferred": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_nurture_run_sends_the_welcome_flow_into_the_outbox(tmp_path: Path) -> None:
    # Given a fresh folder with the example campaigns, and nothing configured
    shutil.copytree(REPO / "campaigns", tmp_path / "campaigns")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    env["NURTURE_BASE_URL"] = f"http://127.0.0.1:{_free_port()}"

    # When it runs a week of campaign time at a day a second, with demo leads
    args = ["run", "--speed", "86400", "--for", "7d", "--demo-leads", "6", "--seed", "3"]
    done = subprocess.run(
        [NURTURE, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )

    # Then the welcome emails are in the outbox, rendered, with an unsubscribe link
    assert done.returncode == 0, done.stdout + done.stderr
    assert "added 6 demo leads" in done.stdout
    # and its start-up line says where the console is
    assert f"console at {env['NURTURE_BASE_URL']}/console/; Ctrl-C stops" in done.stdout
    emails = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(emails) >= 6
    subjects = set()
    for file in emails:
        message = BytesParser(policy=default).parsebytes(file.read_bytes())
        subjects.add(str(message["Subject"]))
        assert str(message["List-Unsubscribe"]).strip().startswith(f"<{env['NURTURE_BASE_URL']}/u/")
        assert file.name == str(message["Message-ID"]).strip("<>") + ".eml"
    assert any(s.startswith(("Welcome", "A note for leaders")) for s in subjects)
    assert "welcome/" in done.stdout and "sent" in done.stdout
    # and demo readers opened some, over HTTP: each open is recorded, and each lead who
    # opened the first note got the deep-dive (the welcome flow's `if opened` branch)
    read = re.search(r"demo readers opened (\d+) of (\d+) emails and clicked (\d+)", done.stdout)
    assert read is not None, done.stdout
    opened, clicked = int(read.group(1)), int(read.group(3))
    assert opened >= 1
    engine = create_engine(f"sqlite:///{tmp_path / 'nurture.db'}")
    with engine.connect() as connection:
        events = dict(
            connection.execute(text("SELECT type, count(*) FROM events GROUP BY type")).all()
        )
        first_opened = (
            connection.execute(
                text(
                    "SELECT DISTINCT d.lead_id FROM deliveries d"
                    " JOIN events e ON e.delivery_id = d.id AND e.type = 'opened'"
                    " WHERE d.template LIKE 'welcome/%' AND d.channel = 'email'"
                )
            )
            .scalars()
            .all()
        )
        deep_dive = (
            connection.execute(
                text("SELECT DISTINCT lead_id FROM deliveries WHERE template = 'content/deep-dive'")
            )
            .scalars()
            .all()
        )
        assert set(first_opened) == set(deep_dive) != set()
    engine.dispose()
    assert (events.get("opened", 0), events.get("clicked", 0)) == (opened, clicked)
    # and the run took a week of campaign time, not more while it wound down
    span = re.search(r"campaign time (\S+ \S+) → (\S+ \S+) UTC", done.stdout)
    assert span is not None, done.stdout
    begun, ended = (datetime.strptime(t, "%Y-%m-%d %H:%M") for t in span.groups())
    assert timedelta(days=7) <= ended - begun < timedelta(days=7, hours=12)


def test_demo_leads_are_refused_when_mail_would_really_go_out(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    env["NURTURE_SMTP_URL"] = "smtp://127.0.0.1:9?from=news@acme.example"
    done = subprocess.run(
        [NURTURE, "run", "--demo-leads", "3", "--no-tracking", "--for", "1m"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "--demo-leads writes real-looking addresses" in done.stderr


def test_the_scheduler_enrolls_and_enqueues_on_redis(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    # Given a deployed campaign and a new lead, on PostgreSQL
    db.upgrade(pg_url)
    engine = runtime_engine(pg_url)
    try:
        sessions = sessions_for(engine)
        file = write_campaign(tmp_path / "campaigns")
        deploy_sources(sessions, campaign_files([file]), datetime.now(UTC))
        add_lead(sessions, created_at=datetime.now(UTC))
    finally:
        engine.dispose()

    # When the scheduler polls once
    code, output = invoke(
        "scheduler",
        "--once",
        NURTURE_DATABASE_URL=pg_url,
        NURTURE_BROKER_URL=redis_url,
        NURTURE_SECRET_KEY="scheduler-test-secret-0123456789abcdef",
    )

    # Then the lead is enrolled and its enrollment waits in Redis, one message of ids
    assert code == 0, output
    assert output.strip() == "enrolled 1, enqueued 1 enrollments in 1 batches"
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.llen("dramatiq:nurture") == 1
    finally:
        client.close()
