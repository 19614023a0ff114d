"""The broker on each kind of server: what the scheduler asks of it, before and after the
server restarts (the tests' own Redis and RabbitMQ, a namespace per test)."""

from __future__ import annotations

import pytest

from nurture.config import Settings
from nurture.runtime.broker import Queue, make_broker
from tests.runtime.services import RabbitServer, RedisServer


def test_a_queue_counts_what_waits_and_works_again_after_its_server_restarts(
    broker: str, broker_url: str, request: pytest.FixtureRequest
) -> None:
    server: RedisServer | RabbitServer = request.getfixturevalue(f"{broker}_server")
    queue = Queue(make_broker(Settings(broker_url=broker_url)))
    try:
        # Given two batches enqueued and nobody consuming
        queue([1, 2], "scheduler:a")
        queue.notices([7])
        assert queue.backlog() == 2

        # When the server dies under the scheduler's connection and comes back
        if isinstance(server, RedisServer):
            server.stop()
        else:
            server.kill()
        with pytest.raises(Exception):  # noqa: B017 -- each broker raises its own kind
            queue.backlog()  # the scheduler's first call each poll, and then its only one
        server.start()

        # Then the same queue counts and enqueues again (on a new connection); RabbitMQ kept
        # the confirmed, persistent messages through the crash, the tests' Redis keeps nothing
        kept = {"redis": 0, "rabbitmq": 2}[broker]
        assert queue.backlog() == kept
        queue([3], "scheduler:b")
        assert queue.backlog() == kept + 1
    finally:
        queue.broker.close()
