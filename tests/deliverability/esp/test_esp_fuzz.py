"""Whatever a verified body holds, a parser answers with reports or a 400, never a crash.

A provider's signature proves who sent a body, not that it has the shape we
expect; the tracking service must still answer 4xx naming the field.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from nurture.deliverability.esp import EspError, Report, mailgun, postmark, sendgrid, ses
from tests.deliverability.esp.conftest import sample

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
KEYS = st.sampled_from(
    [
        "event",
        "eventType",
        "notificationType",
        "RecordType",
        "Type",
        "TypeCode",
        "ID",
        "timestamp",
        "sg_event_id",
        "smtp-id",
        "nurture_delivery",
        "mail",
        "bounce",
        "bouncedRecipients",
        "complaint",
        "delivery",
        "open",
        "click",
        "link",
        "headers",
        "tags",
        "commonHeaders",
        "messageId",
        "BouncedAt",
        "DeliveredAt",
        "ReceivedAt",
        "ChangedAt",
        "Metadata",
        "SuppressSending",
        "SuppressionReason",
        "id",
        "severity",
        "message",
        "user-variables",
        "delivery-status",
        "url",
        "reason",
        "type",
    ]
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=30,
)


def _parsed(parse: Any, value: Any) -> None:
    try:
        reports = parse(value)
    except EspError as e:
        assert 400 <= e.status < 500
        assert e.where.startswith("$")
        return
    assert all(isinstance(r, Report) for r in reports)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_any_body_is_reports_or_a_400(value: Any) -> None:
    body = json.dumps(value).encode()
    _parsed(sendgrid.parse, body)
    _parsed(postmark.parse, body)
    _parsed(lambda v: ses.parse(json.dumps(v), "sns-id"), value)
    _parsed(mailgun.parse, value if isinstance(value, dict) else {"event": value})


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into `value` (keys and indexes), the root included."""
    paths = [prefix]
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else []
    )
    for key, inner in items:
        paths += _paths(inner, (*prefix, key))
    return paths


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


SES = [
    "ses_bounce",
    "ses_complaint",
    "ses_delivery",
    "ses_event_open",
    "ses_event_click",
    "ses_event_bounce_transient",
]
POSTMARK = [
    "postmark_bounce",
    "postmark_spam_complaint",
    "postmark_delivery",
    "postmark_open",
    "postmark_click",
    "postmark_subscription_change",
]
MAILGUN = [
    "mailgun_delivered",
    "mailgun_failed_permanent",
    "mailgun_failed_temporary",
    "mailgun_opened",
    "mailgun_clicked",
    "mailgun_complained",
    "mailgun_unsubscribed",
]


def _mutant(names: list[str]) -> st.SearchStrategy[Any]:
    def one(name: str) -> st.SearchStrategy[Any]:
        original = sample(f"{name}.json")
        return st.tuples(st.sampled_from(_paths(original)), JSON).map(
            lambda p: _replaced(original, p[0], p[1])
        )

    return st.sampled_from(names).flatmap(one)


@settings(max_examples=300, deadline=None)
@given(_mutant(SES), _mutant(POSTMARK), _mutant(MAILGUN), _mutant(["sendgrid_events"]))
def test_a_documented_sample_with_any_field_changed_is_reports_or_a_400(
    ses_event: Any, postmark_record: Any, mailgun_payload: Any, sendgrid_batch: Any
) -> None:
    _parsed(lambda v: ses.parse(json.dumps(v), "sns-id"), ses_event)
    _parsed(postmark.parse, json.dumps(postmark_record).encode())
    _parsed(sendgrid.parse, json.dumps(sendgrid_batch).encode())
    if isinstance(mailgun_payload, dict) and isinstance(mailgun_payload.get("event-data"), dict):
        _parsed(mailgun.parse, mailgun_payload["event-data"])
