"""Per-receiving-domain email rates: deferred, never dropped, sent once, shared by workers.

Two runtimes (two workers' worth: their own executors, connection pools and
rate-store clients) share one PostgreSQL and the tests' own Redis; the SQLite
embedded path keeps the windows in memory. Email goes to a real aiosmtpd sink.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from channels import OutboundMessage
from nurture import db
from nurture.cli import app
from nurture.config import ConfigError, Settings, parse_domain_rates
from nurture.engine.clock import SystemClock
from nurture.models import Delivery, ThrottleDeferral
from nurture.runtime.database import runtime_engine, sessions_for
from nurture.runtime.deploying import campaign_files, deploy_sources
from nurture.runtime.observer import Observer
from nurture.runtime.process import Runtime
from nurture.runtime.throttling import Throttle, domain_of
from tests.runtime.campaign import ONE_TOUCH, write_campaign
from tests.runtime.conftest import MONDAY, SECRET, add_lead
from tests.runtime.helpers import Driver
from tests.runtime.services import SmtpServer

RATES = "qq.com=3/3s,163.com=2/3s"
WINDOW = 3.0
LIMITS = {"qq.com": 3, "163.com": 2}
ADDRESSES = (
    [f"q{n}@qq.com" for n in range(5)]
    + ["f1@foxmail.com", "f2@foxmail.com"]  # QQ Mail too: counted against qq.com
    + [f"w{n}@163.com" for n in range(4)]
    + [f"o{n}@other.example" for n in range(6)]  # no rate: never held back
)


class Stamps(Observer):
    """When each email is about to be handed to SMTP, by receiving domain."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)

    def before_send(self, messages: Sequence[OutboundMessage]) -> None:
        now = time.monotonic()
        with self.lock:
            for m in messages:
                self.times[domain_of(m.to)].append(now)


def _run_until(drivers: Sequence[Driver], smtp: SmtpServer, count: int, timeout: float) -> None:
    """Each driver in a thread of its own, polling and running, until `count` emails arrived."""
    deadline = time.monotonic() + timeout

    def work(driver: Driver) -> None:
        while len(smtp.messages) < count and time.monotonic() < deadline:
            driver.tick()
            time.sleep(0.05)

    threads = [threading.Thread(target=work, args=(d,)) for d in drivers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _most_in_window(times: Sequence[float], window: float) -> int:
    ordered = sorted(times)
    return max(
        (sum(1 for u in ordered if t <= u < t + window) for t in ordered),
        default=0,
    )


@pytest.fixture
def throttled_db(pg_url: str, tmp_path: Path) -> Iterator[str]:
    db.upgrade(pg_url)
    engine = runtime_engine(pg_url)
    sessions = sessions_for(engine)
    file = write_campaign(tmp_path / "campaigns", ONE_TOUCH, "once.nurture")
    deploy_sources(sessions, campaign_files([file.parent]), MONDAY)
    for address in ADDRESSES:
        add_lead(sessions, address, phone=None)
    engine.dispose()
    return pg_url


def _settings(url: str, smtp: SmtpServer, tmp_path: Path, **more: object) -> Settings:
    return Settings(
        database_url=url,
        outbox=tmp_path / "outbox",
        secret_key=SECRET,
        sender="Acme <news@acme.test>",
        smtp_url=smtp.url(),
        max_attempts=2,
        lease_seconds=60,
        domain_rates=parse_domain_rates(RATES),
    ).with_changes(**more)


def _check_sent_once_within_rates(
    runtime: Runtime, smtp: SmtpServer, stamps: Stamps, started: float
) -> None:
    # Every email arrived exactly once
    received = Counter(r for m in smtp.messages for r in m.rcpt_tos)
    assert received == Counter(ADDRESSES)
    assert all(n == 1 for n in smtp.message_ids().values())
    # No domain got more than its rate in any window (a little slack for the send itself)
    for domain, limit in LIMITS.items():
        assert _most_in_window(stamps.times[domain], WINDOW - 0.5) <= limit, domain
    # qq.com's 7 needed three windows; the domain without a rate went out at once
    qq = stamps.times["qq.com"]
    assert len(qq) == 7 and max(qq) - min(qq) >= 2 * WINDOW - 0.5
    assert max(stamps.times["other.example"]) - started < WINDOW - 0.5
    with runtime.sessions() as session:
        rows = list(session.scalars(select(Delivery)))
        deferrals = Counter(session.scalars(select(ThrottleDeferral.domain)))
    # All sent, and the deferrals used up no attempt (max_attempts is 2)
    assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}
    assert set(deferrals) == {"qq.com", "163.com"} and deferrals["qq.com"] >= 4
    throttled_rows = [r for r in rows if r.error and "throttled: " in r.error]
    assert {r.lead_id for r in throttled_rows}  # the reason is in the delivery's log


def test_two_workers_share_each_domains_rate_through_redis(
    throttled_db: str, redis_url: str, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    # Given two workers on one database and one Redis, and rates for qq.com and 163.com
    settings = _settings(throttled_db, smtp_server, tmp_path, broker_url=redis_url)
    assert settings.throttle_storage() == redis_url
    stamps = Stamps()
    runtimes = [
        Runtime.start(settings, SystemClock(), observer=stamps, name=f"worker{n}") for n in range(2)
    ]
    try:
        # When both run until every lead's email is out
        started = time.monotonic()
        _run_until([Driver(r) for r in runtimes], smtp_server, len(ADDRESSES), timeout=40)

        # Then each domain stayed within its rate across both, and nothing was lost or doubled
        _check_sent_once_within_rates(runtimes[0], smtp_server, stamps, started)
    finally:
        for r in runtimes:
            r.close()

    # And the report counts the deferrals by domain
    result = CliRunner().invoke(
        app,
        ["report", "deliveries", "--throttled", "--json"],
        env={"NURTURE_DATABASE_URL": throttled_db, "NURTURE_SECRET_KEY": SECRET},
    )
    assert result.exit_code == 0, result.output
    rows = {r["domain"]: r for r in json.loads(result.output)}
    assert set(rows) == {"qq.com", "163.com"}
    assert rows["qq.com"]["deliveries"] == 4 and rows["qq.com"]["waiting"] == 0
    assert rows["163.com"]["deliveries"] == 2


def test_the_embedded_default_keeps_the_windows_in_memory(
    sqlite_url: str, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    # Given the embedded default (SQLite, one process, no broker) with the same rates
    db.upgrade(sqlite_url)
    file = write_campaign(tmp_path / "campaigns", ONE_TOUCH, "once.nurture")
    settings = _settings(sqlite_url, smtp_server, tmp_path)
    assert settings.throttle_storage() == "memory://"
    stamps = Stamps()
    runtime = Runtime.start(settings, SystemClock(), observer=stamps)
    try:
        deploy_sources(runtime.sessions, campaign_files([file.parent]), MONDAY)
        for address in ADDRESSES:
            add_lead(runtime.sessions, address, phone=None)

        # When it runs until every email is out
        started = time.monotonic()
        _run_until([Driver(runtime)], smtp_server, len(ADDRESSES), timeout=40)

        # Then the same holds
        _check_sent_once_within_rates(runtime, smtp_server, stamps, started)
    finally:
        runtime.close()

    # And the table names the domains
    result = CliRunner().invoke(
        app,
        ["report", "deliveries", "--throttled"],
        env={"NURTURE_DATABASE_URL": sqlite_url, "NURTURE_SECRET_KEY": SECRET},
    )
    assert result.exit_code == 0, result.output
    assert "qq.com" in result.output and "163.com" in result.output


def test_a_rate_for_every_other_domain_and_provider_groups() -> None:
    throttle = Throttle(parse_domain_rates("qq.com=1/min,*=2/min"))
    assert throttle.take("a@foxmail.com") is None
    wait = throttle.take("b@QQ.com")
    assert wait is not None and wait.domain == "qq.com" and 0 < wait.seconds <= 60
    assert [throttle.take(f"x{n}@acme.example") is None for n in range(3)] == [True, True, False]
    assert throttle.take("y@beta.example") is None  # `*` is per domain, not shared


def test_a_store_that_does_not_answer_defers_the_batch_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    throttle = Throttle(parse_domain_rates("qq.com=5/min"), "redis://127.0.0.1:1/0")
    with caplog.at_level("WARNING", logger="nurture.runtime"):
        waits = throttle.take_all(["a@qq.com", "b@qq.com", "c@acme.example"])
    assert [(w.domain, w.seconds) if w else None for w in waits] == [
        ("qq.com", 5.0),
        ("qq.com", 5.0),
        None,
    ]
    assert [r.message for r in caplog.records] == ["the throttle store does not answer; deferring"]


def test_a_backlog_is_spread_over_the_windows_it_needs() -> None:
    throttle = Throttle(parse_domain_rates("qq.com=2/min"))
    waits = throttle.take_all([f"q{n}@qq.com" for n in range(7)] + ["a@acme.example"])
    assert waits[:2] == [None, None] and waits[-1] is None
    seconds = [w.seconds for w in waits[2:7] if w is not None]
    assert len(seconds) == 5 and 0 < seconds[0] <= 60
    assert [round(s - seconds[0]) for s in seconds] == [0, 0, 60, 60, 120]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("qq.com=20", "must read domain=count/period"),
        ("qq.com=20/fortnight", "must read domain=count/period"),
        ("qq=20/min", "is not a domain name"),
        ("qq.com=0/min", "lets nothing through"),
        ("qq.com=1/min,QQ.com=2/min", "has two rates"),
        ("qq.com=1/2d", "1 s to a day"),
    ],
)
def test_bad_rates_are_refused_naming_the_setting(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=f"NURTURE_DOMAIN_RATES.*{words}"):
        Settings.load({"NURTURE_DOMAIN_RATES": text}, cwd="/nonexistent")


def test_rates_are_read_from_the_environment() -> None:
    settings = Settings.load(
        {"NURTURE_DOMAIN_RATES": "qq.com=20/min, 163.com=10 per minute,*=500/hour"},
        cwd="/nonexistent",
    )
    assert [(r.domain, r.count, r.seconds) for r in settings.domain_rates] == [
        ("qq.com", 20, 60),
        ("163.com", 10, 60),
        ("*", 500, 3600),
    ]
    with pytest.raises(ConfigError, match="NURTURE_THROTTLE_URL must be a Redis URL"):
        Settings.load({"NURTURE_THROTTLE_URL": "http://x"}, cwd="/nonexistent")
    assert replace(settings, throttle_url="redis://r:6379/2").throttle_storage() == (
        "redis://r:6379/2"
    )


def test_rates_in_nurture_toml_may_be_a_list(tmp_path: Path) -> None:
    (tmp_path / "nurture.toml").write_text(
        'domain_rates = ["qq.com=20/min", "gmail.com=100/min"]\n', encoding="utf-8"
    )
    settings = Settings.load({}, cwd=tmp_path)
    assert [str(r) for r in settings.domain_rates] == ["qq.com=20/60s", "gmail.com=100/60s"]
    (tmp_path / "nurture.toml").write_text('domain_rates = "qq.com=lots"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"nurture.toml: domain_rates: 'qq.com=lots' must read"):
        Settings.load({}, cwd=tmp_path)
