"""The headers that make each ESP echo our delivery id, and the ESP settings.

No database or server here: the relay's host picks the header, the header
survives into the wire form of the email, and the settings refuse what
would leave a webhook open or broken.
"""

from __future__ import annotations

import base64
import io
import json
from email import message_from_bytes
from email.policy import default

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from channels import OutboundMessage, Sender, email_bytes
from nurture.config import ConfigError, Settings
from nurture.deliverability.esp import EspConfig, outgoing
from nurture.tracking.config import tracking_config


@pytest.mark.parametrize(
    ("url", "name", "header", "value"),
    [
        (
            "smtp+starttls://apikey:SG.x@smtp.sendgrid.net:587",
            "sendgrid",
            "X-SMTPAPI",
            {"unique_args": {"nurture_delivery": "42"}},
        ),
        (
            "smtps://tok:tok@smtp.postmarkapp.com:465",
            "postmark",
            "X-PM-Metadata-nurture_delivery",
            "42",
        ),
        (
            "smtp+starttls://postmaster%40mg.acme.cn:pw@smtp.eu.mailgun.org:587",
            "mailgun",
            "X-Mailgun-Variables",
            {"nurture_delivery": "42"},
        ),
        (
            "smtp+starttls://AKIA:pw@email-smtp.us-east-1.amazonaws.com:587",
            "ses",
            "X-SES-MESSAGE-TAGS",
            "nurture_delivery=42",
        ),
    ],
)
def test_a_relay_of_each_esp_gets_the_header_it_echoes(
    url: str, name: str, header: str, value: object
) -> None:
    assert outgoing.provider(url) == name
    headers = {"X-Nurture-Delivery": "42", **outgoing.headers(name, 42)}
    message = OutboundMessage(
        "email", "lin@client.test", "<m-1@mail.acme.test>", "Hello", text="Hi", headers=headers
    )

    sent = message_from_bytes(email_bytes(message, Sender("news@acme.test")), policy=default)

    raw = str(sent[header])
    assert (json.loads(raw) if isinstance(value, dict) else raw) == value
    assert sent["X-Nurture-Delivery"] == "42"


@pytest.mark.parametrize(
    "url", [None, "smtp://127.0.0.1:2525", "smtp://mail.sendgrid.net.evil.test:25"]
)
def test_other_relays_get_no_provider_header(url: str | None) -> None:
    assert outgoing.provider(url) is None
    assert outgoing.headers(outgoing.provider(url), 42) == {}


def test_the_settings_turn_each_webhook_on() -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    env = {
        "NURTURE_SES_TOPIC_ARNS": "arn:aws:sns:us-east-1:123456789012:ses-events, "
        "arn:aws-cn:sns:cn-north-1:123456789012:ses",
        "NURTURE_SENDGRID_WEBHOOK_KEY": base64.b64encode(der).decode(),
        "NURTURE_POSTMARK_WEBHOOK_AUTH": "postmark:pw",
        "NURTURE_MAILGUN_SIGNING_KEY": "key-abc",
    }

    config = tracking_config(Settings.load(env), warn=io.StringIO()).esp

    assert config.ses_topics == {
        "arn:aws:sns:us-east-1:123456789012:ses-events",
        "arn:aws-cn:sns:cn-north-1:123456789012:ses",
    }
    assert config.sendgrid_key is not None
    assert config.sendgrid_key.public_numbers() == key.public_numbers()
    assert (config.postmark_auth, config.mailgun_key) == ("postmark:pw", "key-abc")
    assert EspConfig.of(Settings.load({})) == EspConfig(bounce_policy=config.bounce_policy)


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("NURTURE_SES_TOPIC_ARNS", "ses-events", "is not an SNS topic ARN"),
        ("NURTURE_SENDGRID_WEBHOOK_KEY", "not base64!", "not a public key"),
        (
            "NURTURE_SENDGRID_WEBHOOK_KEY",
            base64.b64encode(
                ec.generate_private_key(ec.SECP384R1())
                .public_key()
                .public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            ).decode(),
            "not an ECDSA P-256 public key",
        ),
        ("NURTURE_POSTMARK_WEBHOOK_AUTH", "just-a-password", "must read user:password"),
        ("NURTURE_SMTP_ESP", "brevo", "must be one of sendgrid, postmark, mailgun, ses"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(name: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load({name: value})
    assert str(caught.value).startswith(name)
    assert words in str(caught.value)
