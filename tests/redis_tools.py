"""
Redis for the Redis Streams sink's tests: the stack's, on a database of their own, and a
private ``redis-server`` that a test may fill, stop and restart without touching anyone else's.
"""

import shutil
import signal
import subprocess
import time
from urllib.parse import urlparse, urlunparse

import redis
from openedx_events.event_bus.avro.deserializer import deserialize_bytes_to_event_data
from openedx_events.tooling import OpenEdxPublicSignal

from edx_event_bus_outbox.kafka.schemas import extract_event_key
from tests.tcp_proxy import free_port

# The stack's Redis serves Celery's tests on database 0; the sink's tests write to this one.
STREAMS_DATABASE = 3


def with_database(url: str, number: int) -> str:
    """A Redis URL with another database number."""
    return urlunparse(urlparse(url)._replace(path=f"/{number}"))


def streams_url(stack_url: str) -> str:
    """The stack's Redis URL with the sink tests' own database number."""
    return with_database(stack_url, STREAMS_DATABASE)


def read_stream(url, stream):
    """Every entry of a stream, oldest first, as ``(entry id, {field: value})`` with bytes."""
    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        return client.xrange(stream)
    finally:
        client.close()


class StreamMessage:
    """
    A stream entry seen as tests.relay.checker sees a Kafka message: one partition, the entry's
    position as its offset, ``id`` as ``ce_id``, and the event key read back from ``event_data``.
    """

    def __init__(self, index, fields, key_field):
        self._index = index
        self._fields = fields
        signal = OpenEdxPublicSignal.get_signal_by_type(fields[b"type"].decode())
        self._key = str(extract_event_key(deserialize_bytes_to_event_data(fields[b"event_data"], signal), key_field))

    def partition(self):
        return 0

    def offset(self):
        return self._index

    def key(self):
        return self._key

    def headers(self):
        return [("ce_id", self._fields[b"id"])]


def stream_messages(url, stream, key_field):
    return [StreamMessage(index, fields, key_field) for index, (_, fields) in enumerate(read_stream(url, stream))]


class PrivateRedis:
    """
    A ``redis-server`` of this test alone, on a free port, from the binary the stack runs, with
    an append-only file fsynced on every write: a restart keeps the streams, as a production
    Redis with persistence does, and Redis answers LOADING while it reads them back.
    """

    def __init__(self, directory):
        self.directory = directory
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"redis://{self.address}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return self
            except redis.exceptions.RedisError:
                time.sleep(0.05)
        raise AssertionError(f"redis-server on {self.address} did not answer within 30 s")

    def stop(self, sig=signal.SIGTERM):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def client(self):
        return redis.Redis.from_url(self.url, socket_timeout=5)
