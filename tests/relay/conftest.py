"""Fixtures for the relay's Redis Streams sink: a stream on the stack's Redis, or a private Redis."""

import signal
import uuid

import pytest
import redis

from tests.redis_tools import PrivateRedis, streams_url


@pytest.fixture
def redis_topic(redis_stack, settings):
    """A fresh topic that the relay sends to the stack's Redis (a database of the sink tests' own)."""
    name = f"test-redis-{uuid.uuid4().hex[:12]}"
    settings.EVENT_BUS_REDIS_CONNECTION_URL = streams_url(redis_stack)
    settings.EVENT_BUS_OUTBOX_TOPIC_SINKS = {name: "redis"}
    yield name
    client = redis.Redis.from_url(streams_url(redis_stack), socket_timeout=10)
    for stream in client.scan_iter(match=f"*{name}*"):  # with a prefix, or the edx producer's copy
        client.delete(stream)
    client.close()


@pytest.fixture
def private_redis(redis_stack, settings, tmp_path):
    """A Redis of this test alone (see ``PrivateRedis``), where every topic goes by default."""
    server = PrivateRedis(tmp_path).start()
    settings.EVENT_BUS_REDIS_CONNECTION_URL = server.url
    settings.EVENT_BUS_OUTBOX_SINK = "redis"
    try:
        yield server
    finally:
        server.stop(signal.SIGKILL)
