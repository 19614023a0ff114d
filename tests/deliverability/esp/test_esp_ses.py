"""Amazon SES events through SNS, posted to the tracking service under uvicorn.

AWS's documented samples, signed by the test with a key whose certificate
the test's own HTTPS server serves (SNS's SigningCertURL), on each database.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from nurture.deliverability.esp import EspConfig
from tests.deliverability.esp.conftest import TOPIC, Aws, Esp, Seed, sample

SNS_HEADERS = {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "x"}


def _post(url: str, message: dict[str, Any]) -> httpx.Response:
    headers = {**SNS_HEADERS, "x-amz-sns-message-type": message["Type"]}
    return httpx.post(f"{url}/esp/ses", content=json.dumps(message), headers=headers, timeout=10)


def _ours(event: dict[str, Any], message_id: str) -> dict[str, Any]:
    """The sample with our Message-ID where SES echoes the message's own."""
    mail = event["mail"]
    for header in mail.get("headers", []):
        if header["name"] == "Message-ID":
            header["value"] = message_id
    mail["commonHeaders"]["messageId"] = message_id
    return event


def test_a_subscription_confirmation_visits_the_subscribe_url(
    fresh_aws: Aws, esp: Esp, seed: Seed
) -> None:
    # Given AWS's sample confirmation, its SubscribeURL on the test's SNS stand-in
    message = sample("sns_subscription_confirmation.json")
    query = message["SubscribeURL"].partition("?")[2]
    message["SubscribeURL"] = f"{fresh_aws.url}/?{query}"
    signed = fresh_aws.sign(message)

    # When SNS posts it
    with esp.serve(fresh_aws.config()) as url:
        response = _post(url, signed)

    # Then the service fetched the certificate, visited the SubscribeURL and answered 200
    assert response.status_code == 200, response.text
    assert response.json() == {"confirmed": TOPIC}
    assert fresh_aws.requests[0] == "/SimpleNotificationService-test.pem"
    assert fresh_aws.requests[1] == f"/?{query}"
    assert esp.nothing_recorded()


@pytest.mark.parametrize(
    ("name", "event_type", "kind", "hard"),
    [
        ("ses_bounce.json", "bounced_hard", "bounced", True),
        ("ses_event_bounce_transient.json", "bounced_soft", "bounced", False),
        ("ses_complaint.json", "complained", "complained", None),
        ("ses_delivery.json", "delivered", "delivered", None),
        ("ses_event_open.json", "opened", "opened", None),
        ("ses_event_click.json", "clicked", "clicked", None),
    ],
)
def test_each_documented_event_is_recorded_once_on_its_delivery(
    fresh_aws: Aws, esp: Esp, seed: Seed, name: str, event_type: str, kind: str, hard: bool | None
) -> None:
    # Given a delivery, and AWS's sample event naming its Message-ID
    touch = seed.touch()
    message_id = esp.message_id(touch.delivery_id)
    signed = fresh_aws.notification(_ours(sample(name), message_id), "0f5c2a10-sns-1")

    # When SNS posts it twice (a retry)
    with esp.serve(fresh_aws.config()) as url:
        first = _post(url, signed)
        again = _post(url, signed)

    # Then it is recorded once, on that delivery
    assert first.status_code == 200, first.text
    assert first.json() == {"recorded": 1, "duplicates": 0, "unmatched": 0}
    assert again.json() == {"recorded": 0, "duplicates": 1, "unmatched": 0}
    assert esp.receipts() == [("ses", "0f5c2a10-sns-1", touch.delivery_id, kind, hard)]
    assert esp.events() == [(event_type, touch.delivery_id)]
    # And the certificate was fetched once for both
    assert fresh_aws.requests == ["/SimpleNotificationService-test.pem"]


def test_a_message_tag_finds_the_delivery_and_signature_version_2_is_read(
    fresh_aws: Aws, esp: Esp, seed: Seed
) -> None:
    # Given an event-publishing sample whose mail carries the nurture_delivery tag
    touch = seed.touch()
    event = sample("ses_event_click.json")
    event["mail"]["tags"]["nurture_delivery"] = [str(touch.delivery_id)]
    envelope = fresh_aws.notification(event, "b1c0-sns-2")
    signed = fresh_aws.sign(envelope, version="2")

    # When SNS posts it signed with SHA256
    with esp.serve(fresh_aws.config()) as url:
        response = _post(url, signed)

    # Then the click is recorded on that delivery
    assert response.json()["recorded"] == 1, response.text
    assert esp.events() == [("clicked", touch.delivery_id)]


@pytest.mark.parametrize("forgery", ["altered message", "altered signature", "version 3"])
def test_a_forged_notification_is_refused_and_records_nothing(
    fresh_aws: Aws, esp: Esp, seed: Seed, forgery: str
) -> None:
    # Given a genuine notification about a delivery, then tampered with
    touch = seed.touch()
    event = _ours(sample("ses_complaint.json"), esp.message_id(touch.delivery_id))
    signed = fresh_aws.notification(event, "forged-1")
    if forgery == "altered message":
        signed["Message"] = signed["Message"].replace("abuse", "fraud")
    elif forgery == "altered signature":
        first = signed["Signature"][0]  # changed for sure: 1 signature in 64 starts with "A"
        signed["Signature"] = ("B" if first == "A" else "A") + signed["Signature"][1:]
    else:
        signed["SignatureVersion"] = "3"

    # When it is posted
    with esp.serve(fresh_aws.config()) as url:
        response = _post(url, signed)

    # Then it is 403, naming the signature, and nothing is recorded
    assert response.status_code == 403, response.text
    assert "Signature" in response.json()["errors"][0]["path"]
    assert esp.nothing_recorded()


def test_another_topic_is_refused_before_any_certificate_is_fetched(
    fresh_aws: Aws, esp: Esp, seed: Seed
) -> None:
    # Given a validly signed message from a topic that is not ours
    touch = seed.touch()
    event = _ours(sample("ses_bounce.json"), esp.message_id(touch.delivery_id))
    envelope = fresh_aws.notification(event, "other-1")
    envelope["TopicArn"] = "arn:aws:sns:us-west-2:999999999999:NotOurs"
    signed = fresh_aws.sign(envelope)

    with esp.serve(fresh_aws.config()) as url:
        response = _post(url, signed)

    # Then it is 403 naming the topic; nothing was fetched or recorded
    assert response.status_code == 403
    assert response.json()["errors"][0]["path"] == "$.TopicArn"
    assert fresh_aws.requests == []
    assert esp.nothing_recorded()


def test_a_certificate_url_outside_amazon_is_never_fetched(
    fresh_aws: Aws, esp: Esp, seed: Seed
) -> None:
    # Given the production host rule (sns.<region>.amazonaws.com) and a message whose
    # certificate URL points at another server (the test's own)
    touch = seed.touch()
    event = _ours(sample("ses_bounce.json"), esp.message_id(touch.delivery_id))
    signed = fresh_aws.notification(event, "elsewhere-1")
    config = EspConfig(ses_topics=frozenset({TOPIC}), sns_tls=fresh_aws.tls)

    with esp.serve(config) as url:
        response = _post(url, signed)

    # Then it is refused without fetching anything
    assert response.status_code == 403
    assert "not an https URL of Amazon SNS" in response.json()["errors"][0]["message"]
    assert fresh_aws.requests == []
    assert esp.nothing_recorded()


def test_an_event_about_a_message_we_did_not_send_is_200_and_recorded_nowhere(
    fresh_aws: Aws, esp: Esp, seed: Seed
) -> None:
    # Given AWS's sample as it is: its Message-ID is no delivery of ours
    seed.touch()
    signed = fresh_aws.notification(sample("ses_bounce.json"), "stranger-1")

    with esp.serve(fresh_aws.config()) as url:
        response = _post(url, signed)

    # Then SNS is told it arrived (no retry would make it ours), and nothing is recorded
    assert response.status_code == 200
    assert response.json() == {"recorded": 0, "duplicates": 0, "unmatched": 1}
    assert esp.nothing_recorded()


def test_bad_bodies_are_400_and_an_unconfigured_webhook_is_503(
    fresh_aws: Aws, esp: Esp, seed: Seed
) -> None:
    # Given a signed notification whose SES event lacks its bounce
    event = sample("ses_bounce.json")
    del event["bounce"]
    signed = fresh_aws.notification(event, "bad-1")

    with esp.serve(fresh_aws.config()) as url:
        missing = _post(url, signed)
        not_json = httpx.post(f"{url}/esp/ses", content=b"{nope", timeout=10)
    with esp.serve(EspConfig()) as url:
        off = _post(url, signed)

    assert missing.status_code == 400
    assert missing.json()["errors"][0]["path"] == "$.Message.bounce"
    assert not_json.status_code == 400
    assert off.status_code == 503
    assert "NURTURE_SES_TOPIC_ARNS" in off.json()["errors"][0]["message"]
    assert esp.nothing_recorded()


def test_our_x_nurture_delivery_header_finds_the_delivery(
    fresh_aws: Aws, esp: Esp, seed: Seed
) -> None:
    # Given AWS's sample bounce (its Message-ID not ours) with the header every email carries
    touch = seed.touch()
    event = sample("ses_bounce.json")
    event["mail"]["headers"].append({"name": "X-Nurture-Delivery", "value": str(touch.delivery_id)})
    signed = fresh_aws.notification(event, "header-1")

    with esp.serve(fresh_aws.config()) as url:
        response = _post(url, signed)

    assert response.json()["recorded"] == 1, response.text
    assert esp.events() == [("bounced_hard", touch.delivery_id)]


HOSTILE = [
    "https://evil.example@sns.us-east-1.amazonaws.com/cert.pem",
    "https://evil.example\\@sns.us-east-1.amazonaws.com/cert.pem",
    "https://sns.us-east-1.amazonaws.com@evil.example/cert.pem",
    "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
    "https://sns.us-east-1.amazonaws.com:abc/cert.pem",
    "https://sns.us-east-1.amazonaws.com\t/cert.pem",
    "http://sns.us-east-1.amazonaws.com/cert.pem",
    "https://sns.evil.com.amazonaws.com.attacker.net/cert.pem",
    "https://sns.us-east-1.amazonaws.com./cert.pem",
    "https://sns.ｕs-east-1.amazonaws.com/cert.pem",
    "https://xn--sns-gz3b.us-east-1.amazonaws.com/cert.pem",
]


@pytest.mark.parametrize("cert_url", HOSTILE)
def test_a_certificate_url_that_only_looks_like_amazons_is_403_and_not_fetched(
    fresh_aws: Aws, esp: Esp, seed: Seed, cert_url: str
) -> None:
    # Given the production host rule, and a notification naming a certificate URL that a
    # loose check (a host found anywhere in it, any port, http) would take for SNS's
    touch = seed.touch()
    event = _ours(sample("ses_bounce.json"), esp.message_id(touch.delivery_id))
    envelope = fresh_aws.notification(event, "hostile-1")
    envelope["SigningCertURL"] = cert_url
    config = EspConfig(ses_topics=frozenset({TOPIC}), sns_tls=fresh_aws.tls)

    with esp.serve(config) as url:
        response = _post(url, envelope)

    # Then it is 403 naming the certificate URL; nothing fetched, nothing recorded
    assert response.status_code == 403, response.text
    assert response.json()["errors"][0]["path"] == "$.SigningCertURL"
    assert fresh_aws.requests == []
    assert esp.nothing_recorded()


@pytest.mark.parametrize("name", ["SigningCertURL", "SubscribeURL"])
def test_a_url_with_a_user_name_before_our_sns_host_is_refused(
    fresh_aws: Aws, esp: Esp, seed: Seed, name: str
) -> None:
    # Given a genuinely signed confirmation whose URL puts a user name before the allowed host
    # (the stand-in's, which would answer it)
    message = sample("sns_subscription_confirmation.json")
    query = message["SubscribeURL"].partition("?")[2]
    message["SubscribeURL"] = f"{fresh_aws.url}/?{query}"
    signed = fresh_aws.sign(message)
    signed[name] = signed[name].replace("https://", "https://attacker@")
    if name == "SubscribeURL":
        signed = fresh_aws.sign({**signed, "SigningCertURL": fresh_aws.cert_url})

    with esp.serve(fresh_aws.config()) as url:
        response = _post(url, signed)

    # Then it is 403 naming that URL, and the URL was never visited
    assert response.status_code == 403, response.text
    assert response.json()["errors"][0]["path"] == f"$.{name}"
    assert not any("Action=ConfirmSubscription" in r for r in fresh_aws.requests)
    if name == "SigningCertURL":
        assert fresh_aws.requests == []
    assert esp.nothing_recorded()
