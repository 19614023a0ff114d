"""The SMTP side of ``nurture bounces``: an aiosmtpd handler for mail to the bounce domain.

What is answered, and why:

- ``RCPT TO`` outside the bounce domain: 550 (the listener relays nothing).
  A ``bounce+...`` address whose signature does not match, or that is not
  well formed: 550 naming why (`nurture.deliverability.verp`); nothing is
  recorded. Any other address at the domain (``fbl@``, ``postmaster@``, where
  feedback loops send ARF reports) is accepted, and its report mapped by the
  quoted original's ``Return-Path`` (a signed VERP address) or its Message-ID.
- ``DATA`` that says it is a report and cannot be read: 550 5.6.0 with the
  reason, logged (a message that breaks the reader itself is 451 and logged
  with its traceback: aiosmtpd would answer 500 with the exception's name).
  Refusing (rather than accepting and dropping) leaves the reporting server
  holding the report and telling its postmaster, the one person who can fix
  it; a refused report costs us nothing we could have used.
- An auto-reply, or mail that is no report at all: 250, logged as ignored,
  nothing counted. Refusing it would only bounce it back to someone's inbox.
- A report about no delivery we know (a valid signature on a deleted
  delivery, an ARF report whose Message-ID is not ours): 550 naming it.
- A report recorded, or recorded before (a replay): 250. The database
  unreachable: 451, so the reporting server queues the report and tries again.

The database is synchronous; each message is recorded in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from nurture.deliverability.feedback import BouncePolicy, Feedback, FeedbackError, record
from nurture.deliverability.reports import MalformedReport, Report, header, read_report
from nurture.deliverability.verp import PREFIX, Verp, VerpError
from nurture.models import Delivery

log = logging.getLogger("nurture.bounces")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _reply(code: str, text: str) -> str:
    """One SMTP reply line: ASCII, no line breaks, short enough for any client."""
    line = " ".join(text.split()).encode("ascii", "replace").decode()
    return f"{code} {line[:400]}"


@dataclass(slots=True)
class BounceHandler:
    """aiosmtpd handler: checks recipients, reads reports, records `Feedback`."""

    sessions: sessionmaker[Session]
    verp: Verp
    policy: BouncePolicy = field(default_factory=BouncePolicy)
    on_wake: Callable[[list[int]], None] | None = None
    """Called after the commit with the enrollments a recorded event woke."""
    clock: Callable[[], datetime] = _utcnow

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        local, _, domain = address.rpartition("@")
        if domain.lower() != self.verp.domain.lower():
            log.info("refused RCPT %s: not at the bounce domain %s", address, self.verp.domain)
            why = f"{address}: not at {self.verp.domain}; this server relays nothing"
            return _reply("550 5.7.1", why)
        if local.lower().startswith(PREFIX + "+"):
            try:
                self.verp.delivery_id(address)
            except VerpError as e:
                log.warning("refused RCPT: %s", e)
                return _reply("550 5.1.1", str(e))
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        try:
            report = read_report(data)
        except MalformedReport as e:
            log.warning("refused a malformed report from %s: %s", envelope.mail_from, e)
            return _reply("550 5.6.0", f"malformed report: {e}")
        except Exception:  # our bug, not the sender's: it keeps the report and retries
            log.exception("could not read a message from %s", envelope.mail_from)
            return _reply("451 4.3.0", "cannot read this message now; try again later")
        if report.kind == "ignored":
            log.info("ignored a message from %s: %s", envelope.mail_from, report.detail)
            return _reply("250 2.0.0", f"ignored: {report.detail}")
        try:
            outcome = await asyncio.to_thread(self.store, report, list(envelope.rcpt_tos))
        except FeedbackError as e:
            log.warning("refused a %s report: %s", report.source, e)
            return _reply("550 5.1.1", str(e))
        except SQLAlchemyError as e:  # the sender keeps the report and tries again later
            log.error("could not record a %s report (%s): %s", report.source, report.key, e)
            return _reply("451 4.3.0", "cannot record reports now; try again later")
        return outcome

    def store(self, report: Report, recipients: list[str]) -> str:
        """Record `report` for the delivery of each recipient; the SMTP reply.

        Raises `FeedbackError` naming what maps to no delivery; nothing is then recorded.
        """
        woken: list[int] = []
        recorded = 0
        with self.sessions() as session, session.begin():
            targets = self._deliveries(session, report, recipients)
            at = self.clock()
            for delivery_id in targets:
                feedback = Feedback(
                    delivery_id,
                    report.kind,
                    at,
                    report.source,
                    f"{delivery_id}:{report.key}"[:255],
                    hard=report.hard,
                    detail=report.detail,
                )
                if record(session, feedback, self.policy, woken=woken):
                    recorded += 1
                    log.info("recorded %s", _describe(feedback))
                else:
                    log.info("already recorded: %s of delivery %s", report.key, delivery_id)
        if woken and self.on_wake is not None:
            self.on_wake(woken)
        if not recorded:
            return "250 2.0.0 already recorded"
        return f"250 2.0.0 recorded {report.kind} for delivery {', '.join(map(str, targets))}"

    def _deliveries(self, session: Session, report: Report, recipients: list[str]) -> list[int]:
        """The deliveries the report is about: by VERP recipient, else by the quoted original's
        return path (signed, so as good), else by its Message-ID."""
        found: list[int] = []
        for address in recipients:
            if address.rpartition("@")[0].lower().startswith(PREFIX + "+"):
                found.append(self.verp.delivery_id(address))
        if not found and report.original_headers is not None:
            path = header(report.original_headers, "Return-Path")
            with suppress(VerpError):  # a feedback loop quotes the original with its return path
                found.append(self.verp.delivery_id(path))
        if not found:
            for message_id in report.original_ids:
                delivery_id = session.scalar(
                    select(Delivery.id).where(Delivery.message_id == message_id)
                )
                if delivery_id is not None:
                    found.append(delivery_id)
        if not found:
            ids = ", ".join(report.original_ids) or "none attached"
            raise FeedbackError(
                f"the report names no delivery of ours: no VERP recipient and no known "
                f"original Message-ID ({ids})"
            )
        missing = [i for i in found if session.get(Delivery, i) is None]
        if missing:
            raise FeedbackError(f"no delivery {missing[0]} (a VERP address of a deleted delivery?)")
        return list(dict.fromkeys(found))


def _describe(feedback: Feedback) -> str:
    strength = {True: "hard ", False: "soft ", None: ""}[feedback.hard]
    what = strength + feedback.kind if feedback.kind == "bounced" else feedback.kind
    return f"{what} of delivery {feedback.delivery_id} ({feedback.detail or feedback.source})"
