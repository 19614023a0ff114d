"""The ESP webhooks' settings: which providers are on, and their keys."""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ec

from nurture.deliverability.esp import sendgrid
from nurture.deliverability.esp.sns import AWS_HOSTS

if TYPE_CHECKING:
    from nurture.config import Settings
    from nurture.deliverability.feedback import BouncePolicy

TOPIC_ARN = re.compile(r"arn:aws(-cn|-us-gov)?:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]{1,256}")


@dataclass(frozen=True)
class EspConfig:
    """Each provider's webhook is on when its setting is; off, it answers 503."""

    ses_topics: frozenset[str] = frozenset()
    """``NURTURE_SES_TOPIC_ARNS``: the SNS topics whose SES events are accepted."""
    sendgrid_key: ec.EllipticCurvePublicKey | None = None
    """``NURTURE_SENDGRID_WEBHOOK_KEY``: the Event Webhook's verification key."""
    postmark_auth: str | None = None
    """``NURTURE_POSTMARK_WEBHOOK_AUTH``: ``user:password`` Postmark puts in the URL."""
    mailgun_key: str | None = None
    """``NURTURE_MAILGUN_SIGNING_KEY``: the HTTP webhook signing key."""
    sns_cert_host: re.Pattern[str] = AWS_HOSTS
    """Hosts that may serve SNS certificates and confirmations (tests: their own server)."""
    sns_tls: ssl.SSLContext | bool = True
    """TLS verification of those hosts (tests: a context trusting their own CA)."""
    bounce_policy: BouncePolicy | None = None
    """When soft bounces become hard; None: `BouncePolicy`'s defaults."""

    @classmethod
    def of(cls, settings: Settings) -> EspConfig:
        """The webhooks' settings from the runtime's (checked by `Settings.check`)."""
        from nurture.deliverability.feedback import BouncePolicy

        key = settings.sendgrid_webhook_key
        return cls(
            ses_topics=frozenset(settings.ses_topic_arns),
            sendgrid_key=sendgrid.public_key(key) if key else None,
            postmark_auth=settings.postmark_webhook_auth,
            mailgun_key=settings.mailgun_signing_key,
            bounce_policy=BouncePolicy.of(settings),
        )


def check_topic(arn: str) -> bool:
    """True for an SNS topic ARN (``arn:aws:sns:us-east-1:123456789012:ses-events``)."""
    return TOPIC_ARN.fullmatch(arn) is not None
