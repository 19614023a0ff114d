"""SmtpConfig.from_url: every form of NURTURE_SMTP_URL, and clear errors for the wrong ones."""

from __future__ import annotations

import pytest

from channels import ChannelConfigError, SmtpConfig


def test_a_full_url() -> None:
    config = SmtpConfig.from_url(
        "smtp+starttls://ada%40acme.test:p%40ss%3Aword@Mail.Acme.test:2587"
        "?from=Acme%20%3Cnews%40acme.test%3E&reply_to=sales@acme.test&timeout=5"
    )

    assert config == SmtpConfig(
        host="mail.acme.test",
        port=2587,
        username="ada@acme.test",
        password="p@ss:word",
        security="starttls",
        timeout=5.0,
        from_addr="Acme <news@acme.test>",
        reply_to="sales@acme.test",
    )
    assert config.sender.from_addr == "Acme <news@acme.test>"


@pytest.mark.parametrize(
    ("url", "security", "port"),
    [
        ("smtp://mail.acme.test", "plain", 25),
        ("smtp://mail.acme.test?starttls=true", "starttls", 587),
        ("smtp+starttls://mail.acme.test", "starttls", 587),
        ("SMTPS://mail.acme.test", "tls", 465),
        ("smtp://mail.acme.test:2525?starttls=yes", "starttls", 2525),
        ("smtp://mail.acme.test?starttls=false", "plain", 25),
    ],
)
def test_schemes_choose_security_and_default_port(url: str, security: str, port: int) -> None:
    config = SmtpConfig.from_url(url)

    assert (config.security, config.port) == (security, port)


def test_keywords_give_the_sender_when_the_url_does_not() -> None:
    config = SmtpConfig.from_url("smtp://127.0.0.1:2525", from_addr="news@acme.test")

    assert config.sender.from_addr == "news@acme.test"


def test_verify_and_cafile() -> None:
    config = SmtpConfig.from_url("smtps://mail.acme.test?verify=false&cafile=/etc/ca.pem")

    assert (config.verify, config.cafile) == (False, "/etc/ca.pem")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://mail.acme.test", "the scheme must be smtp://, smtp+starttls:// or smtps://"),
        ("mail.acme.test:25", "the scheme must be"),
        ("smtp://", "it names no host"),
        ("smtp://mail.acme.test:smtp", "the port must be a number from 1 to 65535"),
        ("smtp://mail.acme.test:99999", "the port must be a number"),
        ("smtp://mail.acme.test/relay", "it has a path"),
        ("smtp://[mail.acme.test", "Invalid IPv6 URL"),
        ("smtp://mail.acme.test?tls=true", "unknown parameter 'tls'; known: cafile, from"),
        ("smtp://mail.acme.test?starttls=maybe", "starttls='maybe' is not true or false"),
        ("smtps://mail.acme.test?starttls=true", "smtps:// is already TLS"),
        ("smtp://mail.acme.test?timeout=0", "timeout='0' is not a positive number"),
        ("smtp://mail.acme.test?timeout=soon", "timeout='soon' is not a positive number"),
    ],
)
def test_malformed_urls_say_what_is_wrong(url: str, why: str) -> None:
    with pytest.raises(ChannelConfigError, match="malformed SMTP URL") as caught:
        SmtpConfig.from_url(url)

    assert why in str(caught.value)


def test_the_password_never_appears_in_an_error() -> None:
    with pytest.raises(ChannelConfigError) as caught:
        SmtpConfig.from_url("smtp://ada:hunter2@mail.acme.test/x")

    assert "hunter2" not in str(caught.value)
    assert "smtp://ada:***@mail.acme.test/x" in str(caught.value)


@pytest.mark.parametrize("from_addr", [None, "", "news"])
def test_a_missing_sender_is_a_config_error(from_addr: str | None) -> None:
    config = SmtpConfig("mail.acme.test", from_addr=from_addr)

    with pytest.raises(ChannelConfigError, match="no valid sender address"):
        _ = config.sender
