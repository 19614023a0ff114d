"""The tests' Redis is their own: flushing and restarting it leaves the one on :6379 alone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.runtime.services import RedisServer

SHARED = "redis://127.0.0.1:6379/15"
"""The shared Redis, and a database of it that no test of ours uses."""


@pytest.fixture
def shared_key() -> Iterator[tuple[redis.Redis, str]]:
    """A key of someone else's in the shared Redis, set before the test's Redis fixtures run."""
    client = redis.Redis.from_url(SHARED, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        client.close()
        pytest.skip("no shared Redis on 127.0.0.1:6379 to leave alone")
    key = f"nurture-tests:someone-else:{uuid.uuid4().hex}"
    client.set(key, "kept", ex=300)
    yield client, key
    client.delete(key)
    client.close()


def test_a_test_that_flushes_and_restarts_its_redis_leaves_the_shared_one_alone(
    shared_key: tuple[redis.Redis, str], redis_url: str, redis_server: RedisServer
) -> None:
    # Given a test's Redis, flushed by the fixture, holding the test's own key
    own = redis.Redis.from_url(redis_url)
    own.set("queue", "x")

    # When the test stops its Redis and starts it again, as the fault tests do
    redis_server.stop()
    redis_server.start()

    # Then its Redis is back, empty, on a port of its own
    assert redis_server.port != 6379
    assert own.get("queue") is None
    own.close()
    # And the shared Redis still answers, with the other key still in it
    client, key = shared_key
    assert client.ping()
    assert client.get(key) == b"kept"
