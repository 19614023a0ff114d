"""Exactly once at the border: a send whose answer is lost is ``unknown``, never sent again."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from nurture.config import Settings
from nurture.engine.clock import VirtualClock
from nurture.runtime.process import Runtime
from tests.runtime.conftest import add_lead
from tests.runtime.helpers import Driver, deliveries, enrollments
from tests.runtime.services import SmtpServer


@pytest.fixture
def late_smtp() -> Iterator[SmtpServer]:
    """An SMTP server that stores each message, then says 250 only after 1 s."""
    server = SmtpServer(late=1.0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_runtime(
    settings: Settings, clock: VirtualClock, late_smtp: SmtpServer, deployed: object
) -> Iterator[Runtime]:
    """A runtime sending email to `late_smtp`, giving up on a reply after 0.3 s."""
    runtime = Runtime.start(replace(settings, smtp_url=late_smtp.url(timeout=0.3)), clock)
    yield runtime
    runtime.close()


def test_a_late_final_reply_leaves_the_touch_unknown_and_it_is_never_resent(
    smtp_runtime: Runtime, clock: VirtualClock, late_smtp: SmtpServer
) -> None:
    # Given a lead whose first touch the server stores but answers after the client's timeout
    driver = Driver(smtp_runtime)
    add_lead(smtp_runtime.sessions)

    # When the touch goes out, and the enrollment is looked at again and again
    [report] = driver.tick()
    for _ in range(3):
        clock.advance(timedelta(minutes=10))
        driver.tick()

    # Then it is unknown (maybe delivered), the enrollment is held, and it reached the server once
    assert report.unknown == 1 and report.retrying == 0
    [row] = deliveries(smtp_runtime.sessions)
    assert row.status == "unknown" and row.attempts == 1
    assert "after DATA: the message may have been delivered" in (row.error or "")
    [enrollment] = enrollments(smtp_runtime.sessions)
    assert enrollment.state == "active" and enrollment.cursor == "n1"
    assert late_smtp.message_ids() == {row.message_id: 1}
