"""Settings from the environment, the `nurture serve` command, and the package's public names."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nurture.tracking
from nurture import db
from nurture.cli import app as cli_app
from nurture.config import Settings
from nurture.tokens import TokenSigner
from nurture.tracking import DEV_SECRET_KEY, ConfigError, load_config

PG = "postgresql://nurture@db.internal/nurture"
KEY = "k" * 40


def test_production_refuses_to_start_without_a_secret_key() -> None:
    with pytest.raises(ConfigError, match="NURTURE_SECRET_KEY is not set"):
        load_config({"NURTURE_DATABASE_URL": PG}, warn=io.StringIO())


def test_the_embedded_mode_falls_back_to_the_development_key_loudly() -> None:
    warn = io.StringIO()

    config = load_config({}, warn=warn)

    assert config.secret_keys == (DEV_SECRET_KEY,) and config.development_key
    assert "WARNING: NURTURE_SECRET_KEY is not set" in warn.getvalue()
    assert "NURTURE_API_KEY is not set" in warn.getvalue()
    assert config.database_url == db.DEFAULT_DATABASE_URL


def test_keys_rotate_newest_last_and_everything_is_read() -> None:
    env = {
        "NURTURE_DATABASE_URL": PG,
        "NURTURE_SECRET_KEY": f"old-{KEY}, new-{KEY}",
        "NURTURE_API_KEY": "api",
        "NURTURE_BASE_URL": "https://t.acme.cn/",
        "NURTURE_COMPETITOR_DOMAINS": "Rival.cn, other.com",
        "NURTURE_DEFAULT_CALLING_CODE": "+86",
    }
    warn = io.StringIO()

    config = load_config(env, warn=warn)

    assert config.secret_keys == (f"old-{KEY}", f"new-{KEY}")
    assert (config.api_key, config.base_url) == ("api", "https://t.acme.cn")
    assert config.lead_rules.competitor_domains == {"rival.cn", "other.com"}
    assert config.lead_rules.default_calling_code == "86"
    assert warn.getvalue() == ""
    old_token = load_config({**env, "NURTURE_SECRET_KEY": f"old-{KEY}"}).signer().open_token(7)
    assert config.signer().read_open(old_token) == 7


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("NURTURE_SECRET_KEY", f"{KEY},,", "empty key"),
        ("NURTURE_BASE_URL", "t.acme.cn", "must be an http(s) URL"),
        ("NURTURE_DEFAULT_CALLING_CODE", "china", "1 to 3 digits"),
        ("NURTURE_DATABASE_URL", "not a url", "not a database URL"),
    ],
)
def test_bad_settings_name_the_variable(name: str, value: str, message: str) -> None:
    env = {"NURTURE_DATABASE_URL": PG, "NURTURE_SECRET_KEY": KEY, name: value}

    with pytest.raises(ConfigError) as caught:
        load_config(env, warn=io.StringIO())

    assert name in str(caught.value) and message in str(caught.value)


def test_short_keys_are_warned_about() -> None:
    warn = io.StringIO()

    load_config({"NURTURE_SECRET_KEY": "short", "NURTURE_API_KEY": "a"}, warn=warn)

    assert "32 or more random characters" in warn.getvalue()


def test_the_service_reads_nurture_toml_like_the_workers(tmp_path: Path) -> None:
    # Given a key, a base URL and cleaning rules set only in nurture.toml
    (tmp_path / "nurture.toml").write_text(
        f'secret_key = "{KEY}"\napi_key = "api"\nbase_url = "https://t.acme.cn/"\n'
        'competitor_domains = ["Rival.cn"]\ndefault_calling_code = "+86"\n',
        encoding="utf-8",
    )

    # When the service and the runtime read their settings there
    config = load_config({}, warn=io.StringIO(), cwd=tmp_path)
    settings = Settings.load({}, cwd=tmp_path)

    # Then they agree: a token the worker signs is one the service reads
    assert config.secret_keys == settings.secret_keys() == (KEY,)
    assert not config.development_key
    assert config.base_url == "https://t.acme.cn"
    assert config.lead_rules.competitor_domains == {"rival.cn"}
    assert config.lead_rules.default_calling_code == "86"
    worker = TokenSigner(list(settings.secret_keys()))
    assert config.signer().read_open(worker.open_token(42)) == 42


def test_serve_refuses_production_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NURTURE_SECRET_KEY", raising=False)

    result = CliRunner().invoke(cli_app, ["serve", "--url", PG])

    assert result.exit_code == 1
    assert "NURTURE_SECRET_KEY is not set" in result.stderr


def test_serve_refuses_an_unknown_log_level_before_starting() -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--log-level", "loud"])

    assert result.exit_code == 2
    assert "Invalid value for '--log-level'" in result.stderr
    assert "Traceback" not in result.output


def test_serve_names_a_bad_url_option_as_the_option() -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--url", "mysql://db/x"])

    assert result.exit_code == 1
    assert result.stderr == "error: --url: use sqlite or postgresql, not mysql\n"


def test_serve_refuses_a_database_without_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NURTURE_SECRET_KEY", KEY)
    missing = CliRunner().invoke(cli_app, ["serve", "--url", f"sqlite:///{tmp_path / 'no.db'}"])
    old = tmp_path / "old.db"
    db.upgrade(f"sqlite:///{old}", "0002")
    behind = CliRunner().invoke(cli_app, ["serve", "--url", f"sqlite:///{old}"])

    assert missing.exit_code == 1 and "run `nurture db upgrade` first" in missing.stderr
    assert behind.exit_code == 1 and "schema revision 0002" in behind.stderr


def test_the_public_names_are_pinned() -> None:
    assert nurture.tracking.__all__ == [
        "DEV_SECRET_KEY",
        "MAX_BODY",
        "MAX_ITEMS",
        "PIXEL_GIF",
        "ConfigError",
        "Invalid",
        "Problem",
        "TrackingConfig",
        "create_app",
        "load_config",
        "stored_link",
        "stored_links",
        "tracking_config",
    ]
    assert nurture.tracking.__all__ == sorted(
        nurture.tracking.__all__, key=lambda n: (not n.isupper(), n)
    )


def test_serve_says_why_it_cannot_listen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a port another program holds, and a host name that cannot resolve
    monkeypatch.setenv("NURTURE_SECRET_KEY", KEY)
    url = f"sqlite:///{tmp_path / 'n.db'}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = CliRunner().invoke(cli_app, ["serve", "--url", url, "--port", port])
    unknown = CliRunner().invoke(
        cli_app, ["serve", "--url", url, "--host", "nosuchhost.invalid", "--port", port]
    )

    # Then each stops before serving, naming the address and the reason
    assert busy.exit_code == 1
    assert f"--host/--port: cannot listen on 127.0.0.1:{port}: Address already in use" in (
        busy.stderr
    )
    assert unknown.exit_code == 1
    assert f"cannot listen on nosuchhost.invalid:{port}: " in unknown.stderr
    assert "Traceback" not in busy.output + unknown.output
