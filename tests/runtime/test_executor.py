"""The executor on its own: each touch sent exactly once, failures retried or recorded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from channels import OutboundMessage, Receipt, RecordingChannel
from dsl.templates import FileTemplates
from nurture.config import Settings
from nurture.engine.clock import VirtualClock
from nurture.models import Event, Lead, Suppression, Tag
from nurture.runtime.deploying import campaign_files, deploy_sources
from nurture.runtime.keys import Key, message_id
from nurture.runtime.observer import Observer
from nurture.runtime.operations import ReleaseError, release, unknown_deliveries
from nurture.runtime.process import Runtime
from nurture.store.scoring import record_event
from nurture.store.suppressions import address_hash
from nurture.store.wake import wake_waiting
from tests.runtime.conftest import CHANNELS, SECRET, add_lead
from tests.runtime.helpers import Driver, ProcessDied, deliveries, dies_on_the_wire, enrollments


class Crash(Exception):
    """Raised by a hook to stop a job as a process death would."""


def test_a_new_lead_gets_the_first_touch_once_with_its_message_id(
    runtime: Runtime, channel: RecordingChannel
) -> None:
    # Given a new lead, enrolled by its trigger
    driver = Driver(runtime)
    lead = add_lead(runtime.sessions)

    # When the scheduler polls and the batch runs
    [report] = driver.tick()

    # Then one email went out, under the Message-ID of its delivery key
    assert (report.claimed, report.sent) == (1, 1)
    [message] = channel.messages
    [row] = deliveries(runtime.sessions)
    assert row.status == "sent" and row.lead_id == lead and row.attempts == 1
    key = Key(row.enrollment_id, row.step_id, row.iteration)
    expected = message_id(key, "acme.test", SECRET)
    assert message.message_id == row.message_id == expected
    assert message.to == "ada@client.example" and message.subject == "Hello Ada"
    assert message.unsubscribe_url is not None and "/u/" in message.unsubscribe_url
    assert row.links == [{"index": 0, "name": "guide", "url": "https://acme.test/guide"}]
    # and the enrollment waits for the open, unclaimed
    [enrollment] = enrollments(runtime.sessions)
    assert enrollment.state == "waiting" and enrollment.claimed_by is None
    assert enrollment.memory is not None and enrollment.waiting_for is not None


def test_a_redelivered_message_sends_nothing_twice(
    runtime: Runtime, channel: RecordingChannel
) -> None:
    driver = Driver(runtime)
    add_lead(runtime.sessions)
    driver.scheduler.tick()
    [(ids, lease)] = driver.queue.take()

    # When the same message is run twice
    first = runtime.executor.run(ids, lease)
    second = runtime.executor.run(ids, lease)

    # Then the second claims nothing and sends nothing
    assert (first.sent, second.claimed, second.sent) == (1, 0, 0)
    assert len(channel.messages) == 1


def test_a_stale_message_finds_its_enrollments_claimed_by_a_newer_batch(
    runtime: Runtime, clock: VirtualClock, channel: RecordingChannel
) -> None:
    driver = Driver(runtime)
    add_lead(runtime.sessions)
    driver.scheduler.tick()
    [(ids, old_lease)] = driver.queue.take()

    # Given the message was lost: its lease runs out and the scheduler claims again
    clock.advance(timedelta(seconds=61))
    driver.scheduler.tick()
    [(same_ids, new_lease)] = driver.queue.take()
    assert same_ids == ids and new_lease != old_lease

    # When the old message turns up after all, then the new one
    late = runtime.executor.run(ids, old_lease)
    current = runtime.executor.run(ids, new_lease)

    # Then only the newer one runs
    assert (late.claimed, current.sent) == (0, 1)
    assert len(channel.messages) == 1


def test_a_crash_after_the_send_leaves_the_touch_unknown_and_it_is_not_resent(
    settings: object, clock: VirtualClock, channel: RecordingChannel, runtime: Runtime
) -> None:
    # Given a job that dies with its touch on the wire: handed to the channel, no answer
    channel._respond = dies_on_the_wire
    driver = Driver(runtime)
    add_lead(runtime.sessions)
    with pytest.raises(ProcessDied):
        driver.tick()
    [row] = deliveries(runtime.sessions)
    assert row.status == "pending" and len(channel.messages) == 1
    assert row.handed_by is not None and row.handed_at == clock.now()

    # When its lease runs out and the enrollment runs again
    channel._respond = None
    clock.advance(timedelta(seconds=61))
    [report] = driver.tick()

    # Then the touch is unknown, the enrollment is held, and nothing was resent
    assert (report.unknown, report.held, report.sent) == (1, 1, 0)
    [row] = deliveries(runtime.sessions)
    assert row.status == "unknown" and "handed to the channel by worker:" in (row.error or "")
    assert len(channel.messages) == 1
    # and an hour later it is still held, still not resent
    clock.advance(timedelta(hours=1, seconds=1))
    driver.tick()
    assert len(channel.messages) == 1
    [enrollment] = enrollments(runtime.sessions)
    assert enrollment.state == "active" and enrollment.next_run_at is not None

    # When an operator releases it for resending
    with runtime.sessions() as session, session.begin():
        assert [u.id for u in unknown_deliveries(session)] == [row.id]
        release(session, [row.id], clock.now(), by="ops", reason="not in the SMTP log")
    driver.tick()

    # Then it is sent once more, under the same Message-ID, with the audit note kept
    first, again = channel.messages
    assert first.message_id == again.message_id
    [row] = deliveries(runtime.sessions)
    assert (row.status, row.attempts) == ("sent", 2)
    assert "released for resending by ops" in (row.error or "")
    assert "not in the SMTP log" in (row.error or "")


def test_only_unknown_deliveries_can_be_released(runtime: Runtime) -> None:
    driver = Driver(runtime)
    add_lead(runtime.sessions)
    driver.tick()
    [row] = deliveries(runtime.sessions)
    with runtime.sessions() as session, session.begin(), pytest.raises(ReleaseError) as raised:
        release(session, [row.id, 999], datetime.now(UTC), by="ops")
    assert str(raised.value) == (
        f"cannot release 999: no such delivery; {row.id}: it is sent, not unknown"
    )


def test_a_crashed_touch_confirmed_delivered_moves_on_without_resending(
    runtime: Runtime, clock: VirtualClock, channel: RecordingChannel
) -> None:
    channel._respond = dies_on_the_wire
    driver = Driver(runtime)
    add_lead(runtime.sessions)
    with pytest.raises(ProcessDied):
        driver.tick()
    channel._respond = None
    clock.advance(timedelta(seconds=61))
    driver.tick()
    [row] = deliveries(runtime.sessions)
    with runtime.sessions() as session, session.begin():
        release(session, [row.id], clock.now(), by="ops", delivered=True)
    driver.tick()

    assert len(channel.messages) == 1
    [row] = deliveries(runtime.sessions)
    assert row.status == "sent" and "confirmed delivered by ops" in (row.error or "")
    [enrollment] = enrollments(runtime.sessions)
    assert enrollment.state == "waiting"  # past the touch, waiting for its open


def test_a_transient_failure_is_retried_with_backoff_until_it_is_sent(
    runtime: Runtime, clock: VirtualClock, channel: RecordingChannel
) -> None:
    # Given a server that is busy for the first try
    answers = [Receipt.transient("421 try again later"), Receipt.sent("q1")]
    channel._respond = lambda message: answers.pop(0)
    driver = Driver(runtime)
    add_lead(runtime.sessions)

    # When the touch is tried
    [report] = driver.tick()

    # Then it waits, deferred, due again after 30 to 60 s (60 s base, jitter)
    assert report.retrying == 1
    [row] = deliveries(runtime.sessions)
    assert row.status == "deferred" and row.error == "421 try again later"
    [enrollment] = enrollments(runtime.sessions)
    assert enrollment.cursor == "n1" or enrollment.state == "active"
    assert enrollment.next_run_at is not None
    delay = enrollment.next_run_at - clock.now()
    assert timedelta(seconds=30) <= delay <= timedelta(seconds=60)
    assert driver.tick() == []  # not due yet

    # When it comes due, it is sent: the same message, a second attempt
    clock.advance(timedelta(seconds=61))
    [report] = driver.tick()
    assert report.sent == 1
    [row] = deliveries(runtime.sessions)
    assert (row.status, row.attempts) == ("sent", 2)
    first, second = channel.messages
    assert first.message_id == second.message_id


def test_transient_failures_give_up_after_max_attempts(
    runtime: Runtime, clock: VirtualClock, channel: RecordingChannel
) -> None:
    channel._respond = lambda message: Receipt.transient("connection refused")
    driver = Driver(runtime)
    add_lead(runtime.sessions)
    for _ in range(3):
        driver.tick()
        clock.advance(timedelta(minutes=10))

    [row] = deliveries(runtime.sessions)
    assert (row.status, row.attempts) == ("failed", 3)
    assert (row.error or "").endswith("\ngave up after 3 attempts: connection refused")
    assert len(channel.messages) == 3
    [enrollment] = enrollments(runtime.sessions)
    assert enrollment.state == "waiting"  # the flow moved on past the failed touch


def test_a_hard_bounce_closes_email_for_the_address_and_says_why(
    runtime: Runtime, clock: VirtualClock, channel: RecordingChannel
) -> None:
    channel._respond = lambda message: (
        Receipt.permanent("recipient refused: 550 5.1.1 no such user")
        if message.channel == "email"
        else Receipt.sent(f"ok-{message.message_id}")
    )
    driver = Driver(runtime)
    lead_id = add_lead(runtime.sessions)

    driver.tick()

    [row] = deliveries(runtime.sessions)
    assert row.status == "failed" and "550 5.1.1" in (row.error or "")
    with runtime.sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None and not lead.suppressed  # email alone is closed
        [closed] = session.scalars(select(Suppression))
        assert (closed.channel, closed.lead_id) == ("email", lead_id)
        assert closed.address_hash == address_hash("email", "ada@client.example")
        assert "550 5.1.1 no such user" in closed.reason
        event = session.scalars(select(Event).where(Event.type == "bounced_hard")).one()
        assert event.delivery_id == row.id and "550" in event.data["reason"]
        assert event.data["channel"] == "email"
    # and the campaign goes on: the unopened email's SMS nudge still goes out
    clock.advance(timedelta(days=3))
    driver.tick()
    [enrollment] = enrollments(runtime.sessions)
    assert (enrollment.state, enrollment.exit_reason) == ("done", None)
    assert [m.channel for m in channel.messages] == ["email", "sms"]


def test_a_failure_of_the_message_itself_does_not_suppress(
    runtime: Runtime, channel: RecordingChannel
) -> None:
    channel._respond = lambda message: Receipt.permanent("message refused: 552 too big")
    driver = Driver(runtime)
    lead_id = add_lead(runtime.sessions)
    driver.tick()
    with runtime.sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None and lead.hard_bounced_at is None


def test_an_open_wakes_the_enrollment_and_takes_the_opened_branch(
    runtime: Runtime, clock: VirtualClock, channel: RecordingChannel
) -> None:
    driver = Driver(runtime)
    lead_id = add_lead(runtime.sessions)
    driver.tick()
    [first] = deliveries(runtime.sessions)

    # When the lead opens the email an hour later (as the tracking service records it)
    clock.advance(timedelta(hours=1))
    with runtime.sessions() as session, session.begin():
        record_event(session, lead_id, "opened", None, clock.now(), delivery_id=first.id)
        woken = wake_waiting(session, lead_id, clock.now())
    driver.hooks.on_wake(woken)
    driver.drain()

    # Then the opened branch runs at once: tag and the follow-up email
    assert [m.subject for m in channel.messages] == ["Hello Ada", "More for you"]
    with runtime.sessions() as session:
        assert session.scalars(select(Tag.tag).where(Tag.lead_id == lead_id)).all() == ["engaged"]
    [enrollment] = enrollments(runtime.sessions)
    assert enrollment.state == "done"


def test_no_open_takes_the_other_branch_on_sms(
    runtime: Runtime, clock: VirtualClock, channel: RecordingChannel
) -> None:
    driver = Driver(runtime)
    add_lead(runtime.sessions)
    driver.tick()
    clock.advance(timedelta(days=2, seconds=1))
    driver.tick()
    sms = channel.messages[-1]
    assert (sms.channel, sms.to) == ("sms", "+8613912345678")
    assert isinstance(sms.body, str) and sms.body.startswith("Hi Ada, did you see our mail?")


def test_an_unsubscribe_stops_everything(
    runtime: Runtime, clock: VirtualClock, channel: RecordingChannel
) -> None:
    driver = Driver(runtime)
    lead_id = add_lead(runtime.sessions)
    driver.tick()
    with runtime.sessions() as session, session.begin():
        record_event(session, lead_id, "unsubscribed", None, clock.now())
        woken = wake_waiting(session, lead_id, clock.now())
    driver.hooks.on_wake(woken)
    driver.drain()
    clock.advance(timedelta(days=3))
    driver.tick()

    assert len(channel.messages) == 1
    [enrollment] = enrollments(runtime.sessions)
    assert (enrollment.state, enrollment.exit_reason) == ("exited", "suppressed")


def _sent(messages: list[OutboundMessage]) -> list[str]:
    return [m.message_id for m in messages]


def test_a_touch_that_cannot_be_rendered_fails_without_reaching_the_channel(
    runtime: Runtime, campaign: Path, channel: RecordingChannel
) -> None:
    # Given the template breaks (an undefined field)
    runtime.executor.renderer.templates = FileTemplates()  # no cache: the edit is seen at once
    template = campaign / "templates" / "t" / "hello.email.j2"
    template.write_text(
        "{% block subject %}{{ lead.budget }}{% endblock %}{% block text %}x{% endblock %}"
    )
    driver = Driver(runtime)
    add_lead(runtime.sessions)

    # When the touch is due
    [report] = driver.tick()

    # Then it fails with the template's file and line; nothing was sent; the flow goes on
    assert (report.failed, report.sent) == (1, 0)
    assert channel.messages == []
    [row] = deliveries(runtime.sessions)
    assert row.status == "failed"
    assert (row.error or "").startswith("render failed: ") and "hello.email.j2:1" in (
        row.error or ""
    )
    assert "\n" not in (row.error or "")
    [enrollment] = enrollments(runtime.sessions)
    assert enrollment.state == "waiting"


def test_a_lead_suppressed_before_its_first_touch_gets_a_suppressed_row(
    runtime: Runtime, clock: VirtualClock, channel: RecordingChannel
) -> None:
    driver = Driver(runtime)
    lead_id = add_lead(runtime.sessions)
    driver.hooks.on_lead(lead_id, True)
    driver.queue.take()
    with runtime.sessions() as session, session.begin():
        record_event(session, lead_id, "unsubscribed", None, clock.now())

    driver.tick()

    assert channel.messages == []
    [row] = deliveries(runtime.sessions)
    assert (row.status, row.error, row.attempts) == ("suppressed", "lead is unsubscribed", 0)
    [enrollment] = enrollments(runtime.sessions)
    assert (enrollment.state, enrollment.exit_reason) == ("exited", "suppressed")


def test_a_template_over_the_time_limit_fails_its_delivery_and_other_leads_go_on(
    settings: Settings,
    clock: VirtualClock,
    channel: RecordingChannel,
    deployed: object,
    campaign: Path,
) -> None:
    # Given a template that would loop for hours for one lead, and a render limit of 0.3 s
    template = campaign / "templates" / "t" / "hello.email.j2"
    template.write_text(
        "{% block subject %}Hi{% endblock %}{% block text %}"
        "{% if lead.first_name == 'Slow' %}{% for i in range(100000) %}"
        "{% for j in range(100000) %}{% endfor %}{% endfor %}{% endif %}Hello{% endblock %}"
    )
    limited = settings.with_changes(render_seconds=0.3)
    runtime = Runtime.start(limited, clock, channels=lambda: dict.fromkeys(CHANNELS, channel))
    try:
        add_lead(runtime.sessions, "slow@client.example", first_name="Slow", phone=None)
        add_lead(runtime.sessions, "ada@client.example")
        # When both touches are due
        [report] = Driver(runtime).tick()
        failed = [row for row in deliveries(runtime.sessions) if row.status == "failed"]
    finally:
        runtime.close()
    # Then the slow one fails with the reason, and the other lead's is sent
    assert (report.failed, report.sent) == (1, 1)
    assert [m.to for m in channel.messages] == ["ada@client.example"]
    assert len(failed) == 1
    assert "render failed: " in (failed[0].error or "")
    assert "rendering took longer than 0.3 s" in (failed[0].error or "")


def test_a_batch_renders_for_half_its_lease_and_hands_the_rest_back(
    settings: Settings,
    clock: VirtualClock,
    channel: RecordingChannel,
    deployed: object,
    campaign: Path,
) -> None:
    # Given four leads whose template renders until its limit of 0.3 s, and a lease of 1 s
    template = campaign / "templates" / "t" / "hello.email.j2"
    template.write_text(
        "{% block subject %}Hi{% endblock %}{% block text %}{% for i in range(100000) %}"
        "{% for j in range(100000) %}{% endfor %}{% endfor %}Hello{% endblock %}"
    )
    limited = settings.with_changes(render_seconds=0.3, lease_seconds=1)
    runtime = Runtime.start(limited, clock, channels=lambda: dict.fromkeys(CHANNELS, channel))
    try:
        for n in range(4):
            add_lead(runtime.sessions, f"lead{n}@client.example", phone=None)
        driver = Driver(runtime)

        # When their batch runs
        [first] = driver.tick()
        rows = deliveries(runtime.sessions)
        states = enrollments(runtime.sessions)

        # Then it stopped rendering after half its lease: what it rendered failed with the
        # reason, the rest is pending, never handed over, and due again at once
        assert 1 <= first.failed < 4 and first.failed + first.handed_back == 4
        pending = [r for r in rows if r.status == "pending"]
        assert len(pending) == first.handed_back
        assert all(r.handed_by is None and r.links is None for r in pending)
        waiting = {r.enrollment_id for r in pending}
        again = [e for e in states if e.id in waiting]
        assert [(e.state, e.claimed_by) for e in again] == [("active", None)] * len(waiting)
        assert all(e.next_run_at == clock.now() for e in again)

        # and the next jobs render the rest, each touch once, nothing sent
        for _ in range(4):
            driver.tick()
        rows = deliveries(runtime.sessions)
    finally:
        runtime.close()
    assert [r.status for r in rows] == ["failed"] * 4
    assert all((r.error or "").count("rendering took longer than 0.3 s") == 1 for r in rows)
    assert channel.messages == []


class SlowRowsAtEachSend(Observer):
    """Before each slice goes out: its addresses, and how many slow touches have failed."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.slices: list[tuple[list[str], int]] = []

    def before_send(self, messages: Sequence[OutboundMessage]) -> None:
        assert self.runtime is not None
        failed = [r for r in deliveries(self.runtime.sessions) if r.template == "t/slow"]
        done = sum(r.status == "failed" for r in failed)
        self.slices.append(([m.to for m in messages], done))


def test_the_touches_of_a_slow_template_wait_behind_the_rest_of_their_batch(
    settings: Settings,
    clock: VirtualClock,
    channel: RecordingChannel,
    deployed: object,
    campaign: Path,
) -> None:
    # Given a second campaign whose template renders until its limit of 0.3 s, and three
    # leads in both campaigns, all in one batch
    (campaign / "templates" / "t" / "slow.email.j2").write_text(
        "{% block subject %}Slow{% endblock %}{% block text %}{% for i in range(100000) %}"
        "{% for j in range(100000) %}{% endfor %}{% endfor %}{% endblock %}"
    )
    (campaign / "slow.nurture").write_text(
        'campaign "Slow"\n  enroll when lead created\n  send email "t/slow"\n'
    )
    observer = SlowRowsAtEachSend()
    limited = settings.with_changes(render_seconds=0.3)
    runtime = Runtime.start(
        limited, clock, channels=lambda: dict.fromkeys(CHANNELS, channel), observer=observer
    )
    observer.runtime = runtime
    try:
        deploy_sources(runtime.sessions, campaign_files([campaign]), clock.now())
        for n in range(3):
            add_lead(runtime.sessions, f"lead{n}@client.example", phone=None)

        # When the batch runs
        [report] = Driver(runtime).tick()
        rows = deliveries(runtime.sessions)
    finally:
        runtime.close()

    # Then the healthy touches went out before the slow ones were all rendered (each slow
    # one failed as its slice was stored, not all of them before anything was sent)
    sent = [to for addresses, _done in observer.slices for to in addresses]
    assert sorted(sent) == [f"lead{n}@client.example" for n in range(3)]
    assert all(done < 3 for _addresses, done in observer.slices), observer.slices
    assert (report.sent, report.failed) == (3, 3)
    assert (
        sorted((r.template, r.status) for r in rows)
        == [("t/hello", "sent")] * 3 + [("t/slow", "failed")] * 3
    )
