"""ESP event webhooks on the tracking service.

    POST /esp/ses        Amazon SES events through an SNS HTTPS subscription
    POST /esp/sendgrid   SendGrid's signed Event Webhook
    POST /esp/postmark   Postmark's webhooks, with basic auth in the URL
    POST /esp/mailgun    Mailgun's signed webhooks

Each request is authenticated first (`nurture.deliverability.esp`): a forged
or missing signature, wrong credentials, a topic that is not ours, a stale
timestamp or a replayed Mailgun token is 4xx and records nothing. A
provider that is not configured answers 503 (the provider retries; set the
setting and the events arrive). A body that is not the provider's shape is
400 naming the field.

Each event is then recorded, in one transaction per request, as a
`Feedback` on its delivery: by our delivery id when the provider echoes
the ``nurture_delivery`` custom argument, else by our Message-ID.
Recording is idempotent by (provider, the provider's event id), so a
replayed or retried webhook records nothing twice. An event about a message
we did not send (another application on the same ESP account) is answered
200 and recorded nowhere: the providers retry anything else, and no retry
would make it ours. The answer counts what happened:
``{"recorded": 1, "duplicates": 0, "unmatched": 0}``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from nurture.deliverability.esp import EspConfig, EspError, Report, mailgun, postmark, sendgrid, ses
from nurture.deliverability.esp.common import load_json
from nurture.deliverability.esp.sns import SnsVerifier
from nurture.deliverability.feedback import BouncePolicy, Feedback, FeedbackError, record
from nurture.engine.clock import Clock
from nurture.models import Delivery
from nurture.tracking.bodies import MAX_BODY, Reject, read_body
from nurture.tracking.records import Effects

logger = logging.getLogger("nurture.tracking")

T = TypeVar("T")
Handler = Callable[[Request], Awaitable[Response]]
SETTINGS = {
    "ses": "NURTURE_SES_TOPIC_ARNS",
    "sendgrid": "NURTURE_SENDGRID_WEBHOOK_KEY",
    "postmark": "NURTURE_POSTMARK_WEBHOOK_AUTH",
    "mailgun": "NURTURE_MAILGUN_SIGNING_KEY",
}


class Service(Protocol):
    """What the webhooks need of the tracking service (`nurture.tracking.app._Tracking`)."""

    clock: Clock
    body_timeout: float

    def _write(self, work: Callable[[Session, datetime, Effects], T]) -> T: ...


def routes(
    config: EspConfig | None, service: Service, guarded: Callable[[Handler], Handler]
) -> list[BaseRoute]:
    """The four webhook routes, each wrapped by the service's `guarded`."""
    hooks = _Webhooks(config or EspConfig(), service)
    return [
        Route(f"/esp/{name}", guarded(hooks.refusing(name, handler)), methods=["POST"])
        for name, handler in (
            ("ses", hooks.ses),
            ("sendgrid", hooks.sendgrid),
            ("postmark", hooks.postmark),
            ("mailgun", hooks.mailgun),
        )
    ]


class _Webhooks:
    def __init__(self, config: EspConfig, service: Service) -> None:
        self.config = config
        self.service = service
        self.sns = SnsVerifier(config.ses_topics, config.sns_cert_host, config.sns_tls)
        self.tokens = mailgun.Tokens()
        self.policy = config.bounce_policy or BouncePolicy()

    def refusing(self, name: str, handler: Handler) -> Handler:
        """`handler`, answering 503 while its provider is not configured, and 4xx for an
        `EspError`."""
        on = {
            "ses": bool(self.config.ses_topics),
            "sendgrid": self.config.sendgrid_key is not None,
            "postmark": bool(self.config.postmark_auth),
            "mailgun": bool(self.config.mailgun_key),
        }[name]

        async def run(request: Request) -> Response:
            if not on:
                message = f"the {name} webhook is off: set {SETTINGS[name]}"
                raise Reject(503, "$", message)
            try:
                return await handler(request)
            except EspError as e:
                if e.status >= 500:
                    logger.warning("%s webhook: %s", name, e.message)
                raise Reject(e.status, e.where, e.message, **e.headers) from None

        return run

    async def ses(self, request: Request) -> Response:
        message = self.sns.envelope(load_json(await self._body(request)))
        await self.sns.verify(message)
        if message["Type"] == "SubscriptionConfirmation":
            await self.sns.confirm(message)
            return JSONResponse({"confirmed": message["TopicArn"]})
        if message["Type"] == "UnsubscribeConfirmation":
            logger.warning("SNS: %s unsubscribed this service", message["TopicArn"])
            return JSONResponse({"unsubscribed": message["TopicArn"]})
        return await self._record(ses.SOURCE, ses.parse(message["Message"], message["MessageId"]))

    async def sendgrid(self, request: Request) -> Response:
        body = await self._body(request)
        assert self.config.sendgrid_key is not None
        sendgrid.verify(
            self.config.sendgrid_key,
            request.headers.get(sendgrid.SIGNATURE),
            request.headers.get(sendgrid.TIMESTAMP),
            body,
            self.service.clock.now(),
        )
        return await self._record(sendgrid.SOURCE, sendgrid.parse(body))

    async def postmark(self, request: Request) -> Response:
        assert self.config.postmark_auth is not None
        postmark.authenticate(self.config.postmark_auth, request.headers.get("authorization"))
        return await self._record(postmark.SOURCE, postmark.parse(await self._body(request)))

    async def mailgun(self, request: Request) -> Response:
        body = load_json(await self._body(request))
        assert self.config.mailgun_key is not None
        now = self.service.clock.now()
        event, token = mailgun.verify(self.config.mailgun_key, body, self.tokens, now)
        try:
            return await self._record(mailgun.SOURCE, mailgun.parse(event))
        except BaseException:
            self.tokens.forget(token)  # nothing was recorded: Mailgun's retry must get in
            raise

    async def _body(self, request: Request) -> bytes:
        body = await read_body(request, MAX_BODY, self.service.body_timeout)
        if not body.strip():
            raise Reject(400, "$", "the body is empty")
        return body

    async def _record(self, source: str, reports: list[Report]) -> Response:
        def work(session: Session, now: datetime, effects: Effects) -> dict[str, int]:
            counts = {"recorded": 0, "duplicates": 0, "unmatched": 0}
            for report in reports:
                outcome = record_report(session, source, report, self.policy, effects)
                counts[outcome] += 1
            return counts

        return JSONResponse(await run_in_threadpool(self.service._write, work))


def record_report(
    session: Session, source: str, report: Report, policy: BouncePolicy, effects: Effects
) -> str:
    """Records `report` on its delivery: ``recorded``, ``duplicates`` or ``unmatched``."""
    delivery_id = find_delivery(session, report)
    if delivery_id is None:
        logger.info(
            "%s event %s (%s) is about no delivery of ours (id %s, Message-ID %s); ignored",
            source,
            report.key,
            report.kind,
            report.delivery_id,
            report.message_id,
        )
        return "unmatched"
    feedback = Feedback(
        delivery_id,
        report.kind,
        report.at,
        source,
        report.key[:255],
        hard=report.hard,
        detail=report.detail,
        url=report.url,
    )
    try:
        fresh = record(session, feedback, policy, woken=effects.woken)
    except FeedbackError as e:  # pragma: no cover - the delivery was just found
        raise Reject(400, "$", str(e)) from e
    return "recorded" if fresh else "duplicates"


def find_delivery(session: Session, report: Report) -> int | None:
    """The delivery `report` is about: by our echoed id, else by our Message-ID."""
    if report.delivery_id is not None:
        found = session.scalar(select(Delivery.id).where(Delivery.id == report.delivery_id))
        if found is not None:
            return found
    if report.message_id is not None:
        return session.scalar(select(Delivery.id).where(Delivery.message_id == report.message_id))
    return None
