"""Bodies no provider sends, posted to every ESP webhook of the service under uvicorn.

Each webhook is on and each request passes whatever check comes before the
body is read (SendGrid's signature, Postmark's credentials), so what answers
is the body's reading: a 4xx naming it, never a 500, and nothing recorded.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from nurture.deliverability.esp import EspConfig
from nurture.deliverability.esp.sendgrid import SIGNATURE, TIMESTAMP, public_key
from nurture.engine.clock import VirtualClock
from tests.deliverability.esp.conftest import Aws, Esp, Seed, sample

SENDGRID = ec.generate_private_key(ec.SECP256R1())
POSTMARK = ("postmark", "s3cret")
MAILGUN = "key-bad-input-0123456789"

BODIES = {
    "nested deeper than any payload": b"[" * 100_000 + b"]" * 100_000,
    "a number of 5000 digits": b'{"event": ' + b"7" * 5000 + b"}",
    "not UTF-8": b'{"event": "\xff\xfe"}',
    "JSON that is not an object": b'"just a string"',
    "a form, not JSON": b"event=delivered&token=x",
}


def _config(aws: Aws) -> EspConfig:
    der = SENDGRID.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ses = aws.config()
    return EspConfig(
        ses_topics=ses.ses_topics,
        sns_cert_host=ses.sns_cert_host,
        sns_tls=ses.sns_tls,
        sendgrid_key=public_key(base64.b64encode(der).decode()),
        postmark_auth=":".join(POSTMARK),
        mailgun_key=MAILGUN,
    )


def _sendgrid(url: str, body: bytes, now: float) -> httpx.Response:
    stamp = str(int(now))
    signature = SENDGRID.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    headers = {SIGNATURE: base64.b64encode(signature).decode(), TIMESTAMP: stamp}
    return httpx.post(f"{url}/esp/sendgrid", content=body, headers=headers, timeout=10)


def _postmark(url: str, body: bytes, now: float) -> httpx.Response:
    return httpx.post(f"{url}/esp/postmark", content=body, auth=POSTMARK, timeout=10)


def _mailgun(url: str, body: bytes, now: float) -> httpx.Response:
    return httpx.post(f"{url}/esp/mailgun", content=body, timeout=10)


def _ses(url: str, body: bytes, now: float) -> httpx.Response:
    headers = {"Content-Type": "text/plain; charset=UTF-8"}
    return httpx.post(f"{url}/esp/ses", content=body, headers=headers, timeout=10)


POSTS: dict[str, Callable[[str, bytes, float], httpx.Response]] = {
    "ses": _ses,
    "sendgrid": _sendgrid,
    "postmark": _postmark,
    "mailgun": _mailgun,
}


@pytest.mark.parametrize("body", list(BODIES), ids=list(BODIES))
def test_a_body_no_provider_sends_is_400_at_every_webhook(
    fresh_aws: Aws, esp: Esp, seed: Seed, clock: VirtualClock, body: str
) -> None:
    seed.touch()
    with esp.serve(_config(fresh_aws)) as url:
        answers = {
            name: post(url, BODIES[body], clock.now().timestamp()) for name, post in POSTS.items()
        }
    for name, answer in answers.items():
        assert answer.status_code == 400, (name, answer.status_code, answer.text)
        [problem] = answer.json()["errors"]
        assert problem["path"].startswith("$"), (name, problem)
        assert "internal error" not in problem["message"], (name, problem)
    assert esp.nothing_recorded()


def test_an_ses_message_nested_too_deep_is_400_naming_the_message(
    fresh_aws: Aws, esp: Esp, seed: Seed
) -> None:
    # Given a genuinely signed SNS notification whose Message is absurdly nested JSON
    seed.touch()
    envelope = sample("sns_notification.json")
    envelope.update(Message="[" * 50_000 + "]" * 50_000, MessageId="deep-1")
    envelope.pop("Subject")
    signed = fresh_aws.sign(envelope)

    with esp.serve(_config(fresh_aws)) as url:
        answer = _ses(url, json.dumps(signed).encode(), 0)

    assert answer.status_code == 400, answer.text
    assert answer.json()["errors"][0]["path"] == "$.Message"
    assert esp.nothing_recorded()


def test_a_mailgun_signature_with_non_ascii_characters_is_403(
    fresh_aws: Aws, esp: Esp, seed: Seed, clock: VirtualClock
) -> None:
    # Given a Mailgun payload whose signature is not hex at all
    touch = seed.touch()
    payload = sample("mailgun_opened.json")
    payload["event-data"]["user-variables"]["nurture_delivery"] = str(touch.delivery_id)
    stamp = str(int(clock.now().timestamp()))
    payload["signature"] = {"timestamp": stamp, "token": "t" * 50, "signature": "é" * 64}

    with esp.serve(_config(fresh_aws)) as url:
        answer = httpx.post(f"{url}/esp/mailgun", json=payload, timeout=10)

    assert answer.status_code == 403, answer.text
    assert answer.json()["errors"][0]["path"] == "$.signature.signature"
    assert esp.nothing_recorded()


@pytest.mark.parametrize(
    ("field", "value"),
    [("Details", "smtp;550 \u0000 no such user"), ("Email", "ada\udc80@corp.com")],
    ids=["NUL", "lone surrogate"],
)
def test_text_that_cannot_be_stored_is_400_naming_the_field(
    fresh_aws: Aws, esp: Esp, seed: Seed, field: str, value: str
) -> None:
    # Given Postmark's bounce about our delivery with a string PostgreSQL cannot store
    touch = seed.touch()
    record = sample("postmark_bounce.json")
    record["Metadata"]["nurture_delivery"] = str(touch.delivery_id)
    record[field] = value
    body = json.dumps(record).encode()  # escaped (\\u0000, \\udc80), as JSON allows

    with esp.serve(_config(fresh_aws)) as url:
        answer = _postmark(url, body, 0)

    # Then it is 400 naming the field (not a 500 from the database), and nothing is recorded
    assert answer.status_code == 400, answer.text
    assert answer.json()["errors"][0]["path"] == f"$.{field}"
    assert esp.nothing_recorded()
