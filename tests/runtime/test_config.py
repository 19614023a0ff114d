"""Settings from the environment and nurture.toml: defaults that run embedded, one-line errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from dramatiq import Broker
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker

from nurture.config import DEV_SECRET_KEY, ConfigError, Settings, parse_cap
from nurture.engine.caps import Cap
from nurture.runtime.broker import make_broker


def test_with_nothing_set_everything_runs_embedded(tmp_path: Path) -> None:
    settings = Settings.load({}, tmp_path)
    assert settings.database_url == "sqlite:///nurture.db"
    assert settings.broker_url is None and settings.smtp_url is None
    assert settings.outbox == Path("outbox")
    assert settings.base_url == "http://127.0.0.1:8080"
    assert settings.batch_size == 250
    assert settings.embedded and settings.secret_keys() == (DEV_SECRET_KEY,)
    assert settings.sender_domain() == "localhost"


def test_the_environment_wins_over_nurture_toml(tmp_path: Path) -> None:
    (tmp_path / "nurture.toml").write_text(
        'batch_size = 100\nworker_threads = 8\nsender = "News <news@acme.example>"\n'
        'global_cap = "5 per week"\ntemplates = ["extra"]\n'
    )
    settings = Settings.load({"NURTURE_BATCH_SIZE": "50"}, tmp_path)
    assert (settings.batch_size, settings.worker_threads) == (50, 8)
    assert settings.sender_domain() == "acme.example"
    assert settings.global_cap == Cap(5, timedelta(weeks=1))
    assert settings.templates == (Path("extra"),)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("redis://127.0.0.1:6379/0", RedisBroker),
        ("amqp://guest:guest@127.0.0.1:5672/", RabbitmqBroker),
        ("amqps://nurture:s3cret@mq.acme.example:5671/prod", RabbitmqBroker),
    ],
)
def test_a_redis_or_rabbitmq_url_picks_its_broker(
    tmp_path: Path, url: str, kind: type[Broker]
) -> None:
    settings = Settings.load({"NURTURE_BROKER_URL": url}, tmp_path)
    broker = make_broker(settings)  # connects lazily: nothing needs to listen
    assert settings.broker_url == url and isinstance(broker, kind)


def test_render_limits_come_from_the_environment(tmp_path: Path) -> None:
    env = {"NURTURE_RENDER_MAX_SIZE": "50000", "NURTURE_RENDER_SECONDS": "0.5"}
    settings = Settings.load(env, tmp_path)
    assert (settings.render_max_size, settings.render_seconds) == (50_000, 0.5)
    assert (Settings().render_max_size, Settings().render_seconds) == (1_000_000, 2.0)


def test_the_statement_timeout_alone_reads_like_the_others(tmp_path: Path) -> None:
    # Given a nurture.toml with a timeout and an environment with a bad unrelated setting
    (tmp_path / "nurture.toml").write_text("statement_timeout = 5\n")
    env = {"NURTURE_BATCH_SIZE": "0"}
    # Then the timeout alone is read from the file, and the environment wins over it
    assert Settings.load_one("statement_timeout", env, tmp_path) == 5.0
    env["NURTURE_STATEMENT_TIMEOUT"] = "0.25"
    assert Settings.load_one("statement_timeout", env, tmp_path) == 0.25
    assert Settings.load_one("statement_timeout", {}, tmp_path / "none") == 60.0
    # And a value that cannot work names where it came from
    (tmp_path / "nurture.toml").write_text("statement_timeout = -5\n")
    with pytest.raises(ConfigError, match=r"nurture.toml: statement_timeout must be between 0"):
        Settings.load_one("statement_timeout", {}, tmp_path)


def test_the_smtp_url_gives_the_sender_unless_one_is_set() -> None:
    url = "smtp://mail.acme.example:2525?from=Acme%20%3Cnews%40acme.example%3E"
    assert Settings(smtp_url=url).sender_domain() == "acme.example"
    assert Settings(smtp_url=url, sender="x@other.example").sender_domain() == "other.example"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NURTURE_BATCH_SIZE": "lots"}, "NURTURE_BATCH_SIZE must be a whole number, got 'lots'"),
        ({"NURTURE_BATCH_SIZE": "0"}, "NURTURE_BATCH_SIZE must be between 1 and 1000, got 0"),
        ({"NURTURE_LEASE_SECONDS": "soon"}, "NURTURE_LEASE_SECONDS must be a number of seconds"),
        (
            {"NURTURE_BROKER_URL": "kafka://queue"},
            "NURTURE_BROKER_URL must be a Redis URL (redis://host:6379/0) or a RabbitMQ URL "
            "(amqp://user:password@host:5672/vhost), got 'kafka'",
        ),
        ({"NURTURE_BROKER_URL": "amqp:///"}, "NURTURE_BROKER_URL: a RabbitMQ URL needs a host"),
        ({"NURTURE_BROKER_URL": "redis://[::1"}, "NURTURE_BROKER_URL is not a valid URL"),
        (
            {"NURTURE_BROKER_URL": "redis://:s3cret@127.0.0.1:six/0"},
            "NURTURE_BROKER_URL is not a valid URL (Port could not be cast to integer value as "
            "'six'): 'redis://:***@127.0.0.1:six/0'",
        ),
        (
            {"NURTURE_BROKER_URL": "redis://127.0.0.1:6379/queue"},
            "NURTURE_BROKER_URL: the database after the / must be a number, got 'queue'",
        ),
        ({"NURTURE_WEBHOOK_URL": "https://[hooks"}, "NURTURE_WEBHOOK_URL is not a valid URL"),
        ({"NURTURE_SMTP_URL": "smtp://[mail"}, "NURTURE_SMTP_URL: malformed SMTP URL"),
        ({"NURTURE_SMTP_URL": "http://mail"}, "NURTURE_SMTP_URL: malformed SMTP URL"),
        ({"NURTURE_BASE_URL": "t.acme.example"}, "NURTURE_BASE_URL must be an http(s) URL"),
        ({"NURTURE_SENDER": "nobody"}, "NURTURE_SENDER is not an email address"),
        ({"NURTURE_GLOBAL_CAP": "often"}, "NURTURE_GLOBAL_CAP must read like '5 per week'"),
        (
            {"NURTURE_GLOBAL_CAP": "1 per 99999999999999999 weeks"},
            "NURTURE_GLOBAL_CAP: the period must be at most a year, got '1 per 9999",
        ),
        ({"NURTURE_DATABASE_URL": "mysql://db/x"}, "use sqlite or postgresql, not mysql"),
        ({"NURTURE_RENDER_SECONDS": "0"}, "NURTURE_RENDER_SECONDS must be between 0.01 and 600"),
        ({"NURTURE_RENDER_MAX_SIZE": "10"}, "NURTURE_RENDER_MAX_SIZE must be between 1000 and"),
        ({"NURTURE_RENDER_MAX_SIZE": "big"}, "NURTURE_RENDER_MAX_SIZE"),
        ({"NURTURE_STATEMENT_TIMEOUT": "-1"}, "NURTURE_STATEMENT_TIMEOUT must be between 0 and"),
        ({"NURTURE_STATEMENT_TIMEOUT": "1m"}, "NURTURE_STATEMENT_TIMEOUT must be a number of"),
        ({"NURTURE_WECHAT_APPID": "wx1"}, "NURTURE_WECHAT_APPID and NURTURE_WECHAT_SECRET go"),
        (
            {
                "NURTURE_WECHAT_APPID": "wx1",
                "NURTURE_WECHAT_SECRET": "s",
                "NURTURE_WECHAT_URL": "https://relay.example/wechat",
            },
            "NURTURE_WECHAT_URL (a relay) and NURTURE_WECHAT_APPID (WeChat itself) are both set",
        ),
        ({"NURTURE_WECHAT_API_URL": "api.weixin.qq.com"}, "NURTURE_WECHAT_API_URL must be an"),
        ({"NURTURE_DKIM": "acme.example"}, "NURTURE_DKIM: 'acme.example' must read domain:"),
    ],
)
def test_bad_values_are_one_line_errors(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.load(env, tmp_path)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_nurture_toml_names_unknown_keys_and_bad_types(tmp_path: Path) -> None:
    toml = tmp_path / "nurture.toml"
    toml.write_text("batch = 10\n")
    with pytest.raises(ConfigError, match="unknown setting 'batch'"):
        Settings.load({}, tmp_path)
    toml.write_text('batch_size = "ten"\n')
    with pytest.raises(ConfigError, match="batch_size must be a whole number"):
        Settings.load({}, tmp_path)
    toml.write_text("batch_size = [\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        Settings.load({}, tmp_path)


def test_a_value_from_nurture_toml_that_cannot_work_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "nurture.toml").write_text('batch_size = 5000\nbase_url = "ftp://t.acme"\n')

    with pytest.raises(ConfigError) as raised:
        Settings.load({}, tmp_path)
    assert str(raised.value) == (
        f"{tmp_path / 'nurture.toml'}: base_url must be an http(s) URL, got 'ftp://t.acme'"
    )
    with pytest.raises(ConfigError) as raised:
        Settings.load({"NURTURE_BASE_URL": "https://t.acme"}, tmp_path)
    assert (
        str(raised.value)
        == f"{tmp_path / 'nurture.toml'}: batch_size must be between 1 and 1000, got 5000"
    )
    with pytest.raises(ConfigError, match=r"^NURTURE_BATCH_SIZE must be between"):
        Settings.load({"NURTURE_BASE_URL": "https://t.acme", "NURTURE_BATCH_SIZE": "0"}, tmp_path)


def test_production_needs_a_secret_key(tmp_path: Path) -> None:
    settings = Settings.load({"NURTURE_DATABASE_URL": "postgresql://db/nurture"}, tmp_path)
    with pytest.raises(ConfigError, match="NURTURE_SECRET_KEY is not set"):
        settings.secret_keys()
    keyed = settings.with_changes(secret_key="old-key, new-key")
    assert keyed.secret_keys() == ("old-key", "new-key")


@pytest.mark.parametrize(
    ("text", "cap"),
    [
        ("5 per week", Cap(5, timedelta(weeks=1))),
        ("2 per 3 days", Cap(2, timedelta(days=3))),
        ("1/day", Cap(1, timedelta(days=1))),
    ],
)
def test_global_caps_read_like_the_language(text: str, cap: Cap) -> None:
    assert parse_cap(text) == cap


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 per week", "a cap of 0 lets nothing through"),
        ("5 per 0 days", "the period must be at least one day"),
        ("often", "must read like '5 per week'"),
    ],
)
def test_a_global_cap_that_cannot_work_is_refused_in_words(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_cap(text)


def test_required_consent_names_channels(tmp_path: Path) -> None:
    settings = Settings.load({"NURTURE_REQUIRE_CONSENT": " Email, sms,email "}, tmp_path)
    assert settings.require_consent == ("email", "sms")
    assert Settings.load({}, tmp_path).require_consent == ()
    (tmp_path / "nurture.toml").write_text('require_consent = ["wechat"]\n')
    assert Settings.load({}, tmp_path).require_consent == ("wechat",)
    with pytest.raises(ConfigError) as refused:
        Settings.load({"NURTURE_REQUIRE_CONSENT": "email,fax"}, tmp_path)
    assert str(refused.value) == (
        "NURTURE_REQUIRE_CONSENT: 'fax' is not a channel; use email, sms, wechat"
    )
