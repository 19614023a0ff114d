"""The header that makes an ESP echo our delivery id in its webhooks, by SMTP relay.

Every email carries ``X-Nurture-Delivery`` (SES echoes it in ``mail.headers``
when the identity includes original headers). A relay of one of the four
providers also gets the header that provider turns into a custom argument
echoed on every event, so events map to their delivery even where the
provider rewrites the Message-ID (Postmark does):

    smtp.sendgrid.net         X-SMTPAPI: {"unique_args": {"nurture_delivery": "42"}}
    smtp.postmarkapp.com      X-PM-Metadata-nurture_delivery: 42
    smtp.mailgun.org          X-Mailgun-Variables: {"nurture_delivery": "42"}
    email-smtp.*.amazonaws.com  X-SES-MESSAGE-TAGS: nurture_delivery=42

The provider is known from the SMTP URL's host, so nothing is configured,
unless the mail goes through a relay of one's own (a local Postfix that
forwards to the ESP): then ``NURTURE_SMTP_ESP`` names it.
"""

from __future__ import annotations

import json
from typing import Final
from urllib.parse import urlsplit

from nurture.deliverability.esp.common import DELIVERY_ARG

PROVIDERS: Final = ("sendgrid", "postmark", "mailgun", "ses")
HOSTS: Final = (
    ("sendgrid.net", "sendgrid"),
    ("postmarkapp.com", "postmark"),
    ("mailgun.org", "mailgun"),
    ("mailgun.net", "mailgun"),
    ("amazonaws.com", "ses"),
    ("amazonaws.com.cn", "ses"),
)


def provider(smtp_url: str | None, named: str | None = None) -> str | None:
    """`named` (``NURTURE_SMTP_ESP``) when given, else the ESP whose relay `smtp_url` is
    (``sendgrid``, ``postmark``, ``mailgun`` or ``ses``), else None."""
    if named:
        return named
    host = (urlsplit(smtp_url).hostname or "").lower().rstrip(".") if smtp_url else ""
    for suffix, name in HOSTS:
        if host == suffix or host.endswith("." + suffix):
            return name
    return None


def headers(name: str | None, delivery_id: int) -> dict[str, str]:
    """The header(s) that make provider `name` echo `delivery_id`."""
    value = str(delivery_id)
    if name == "sendgrid":
        return {"X-SMTPAPI": json.dumps({"unique_args": {DELIVERY_ARG: value}})}
    if name == "postmark":
        return {f"X-PM-Metadata-{DELIVERY_ARG}": value}
    if name == "mailgun":
        return {"X-Mailgun-Variables": json.dumps({DELIVERY_ARG: value})}
    if name == "ses":
        return {"X-SES-MESSAGE-TAGS": f"{DELIVERY_ARG}={value}"}
    return {}
