"""``nurture doctor dkim``: keys made, their records printed, and NURTURE_DKIM read and checked."""

from __future__ import annotations

import asyncio
import re
import stat
from pathlib import Path

import dkim
import pytest
from typer.testing import CliRunner

from channels import OutboundMessage
from nurture.cli import app
from nurture.config import ConfigError, Settings
from nurture.runtime.sending import make_channels
from tests.channels.servers import SmtpServer

runner = CliRunner()


def published(output: str) -> dict[str, bytes]:
    """The TXT records in the command's output, by name, as DNS answers them (strings joined)."""
    records = {}
    for name, strings in re.findall(r"(\S+\._domainkey\.\S+)\s+IN\s+TXT\s+(.+)", output):
        records[name] = "".join(re.findall(r'"([^"]*)"', strings)).encode()
    return records


def test_generated_keys_sign_mail_that_verifies_against_the_printed_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer
) -> None:
    # Given an RSA and an Ed25519 key made by the command
    monkeypatch.chdir(tmp_path)
    made = [
        runner.invoke(app, ["doctor", "dkim", "--generate", "acme.test", "--selector", "r1"]),
        runner.invoke(
            app,
            [
                "doctor",
                "dkim",
                "--generate",
                "acme.test",
                "--selector",
                "e1",
                "--algorithm",
                "ed25519",
            ],
        ),
    ]
    assert [r.exit_code for r in made] == [0, 0], [r.output for r in made]
    assert stat.S_IMODE((tmp_path / "r1.acme.test.key").stat().st_mode) == 0o600
    entries = [re.search(r"acme\.test:\w+:\S+:\w+", r.output).group(0) for r in made]  # type: ignore[union-attr]

    # When NURTURE_DKIM names both and `doctor dkim` prints the records to publish
    env = {"NURTURE_DKIM": ",".join(entries), "NURTURE_SMTP_URL": smtp_server.url()}
    shown = runner.invoke(app, ["doctor", "dkim"], env=env)
    assert shown.exit_code == 0, shown.output
    records = published(shown.output)
    assert set(records) == {"r1._domainkey.acme.test.", "e1._domainkey.acme.test."}

    # Then the runtime's email channel signs with both, and both verify against those records
    settings = Settings.load(env, tmp_path)
    message = OutboundMessage("email", "lin@client.test", "<d-1@acme.test>", "Hi", text="Hi")

    async def send() -> None:
        channels = make_channels(settings)
        assert (await channels["email"].send(message)).ok
        await channels["email"].aclose()

    asyncio.run(send())
    raw = smtp_server.messages[0].raw
    lookup = lambda name, timeout=5: records.get(name.decode())  # noqa: E731
    assert [dkim.DKIM(raw).verify(idx=i, dnsfunc=lookup) for i in (0, 1)] == [True, True]


def test_a_key_file_is_never_overwritten(tmp_path: Path) -> None:
    key = tmp_path / "k.key"
    key.write_text("mine")
    result = runner.invoke(
        app, ["doctor", "dkim", "--generate", "acme.test", "--selector", "s", "--out", str(key)]
    )
    assert result.exit_code == 1
    assert "exists" in result.output
    assert key.read_text() == "mine"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("acme.test:s1", "must read domain:selector:keyfile[:rsa|ed25519]"),
        ("acme:s1:k.key", "'acme' in 'acme:s1:k.key' is not a domain name"),
        ("acme.test:s 1:k.key", "the selector 's 1'"),
        ("acme.test:s1:missing.key", "cannot read the key file of acme.test:s1:missing.key"),
        ("acme.test:s1:bad.key", "neither a PEM private key nor an Ed25519 seed"),
        ("other.test:s1:ed.key", "no DKIM key for the sender's domain acme.test"),
        ("acme.test:s1:ed.key:rsa", "holds an ed25519-sha256 key, not rsa-sha256"),
    ],
)
def test_a_bad_nurture_dkim_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.key").write_text("hello")
    runner.invoke(
        app,
        [
            "doctor",
            "dkim",
            "--generate",
            "x.test",
            "--selector",
            "s",
            "--algorithm",
            "ed25519",
            "--out",
            "ed.key",
        ],
    )
    env = {"NURTURE_DKIM": value, "NURTURE_SENDER": "news@acme.test"}
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        Settings.load(env, tmp_path)
    assert str(caught.value).startswith("NURTURE_DKIM")
    result = runner.invoke(app, ["doctor", "dkim"], env=env)
    assert result.exit_code == 1
    assert "Traceback" not in result.output


def test_without_keys_the_doctor_says_how_to_make_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["doctor", "dkim"], env={"NURTURE_DKIM": ""})
    assert result.exit_code == 1
    assert "--generate" in result.output
