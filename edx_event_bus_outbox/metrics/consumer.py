"""
The consumer's metrics and health. ``consumer/consumer.py`` reports what happens; the endpoint reads it.

``/healthz`` is 200 while the poll loop turns: the last ``poll()`` returned less than
``max.poll.interval.ms`` ago. That is the bound Kafka itself puts on a consumer: one that does
not poll for that long has left its group and its partitions are given to another, so a
consumer stuck that long (in a receiver, or waiting out a registry or database outage) is
reported, and one merely idle, or waiting for a broker that librdkafka reconnects to, is not.
"""

import time

from prometheus_client import CollectorRegistry, Counter, Gauge

from .server import Health, MetricsServer

PREFIX = "edx_event_bus_outbox_consumer_"


class ConsumerMetrics:
    """One consumer's metrics, in a registry of its own; the endpoint runs between ``serve()`` and ``close()``."""

    def __init__(self, topic: str, max_poll_interval_seconds: float):
        self.topic = topic
        self.registry = CollectorRegistry(auto_describe=True)
        self.poll_within = max_poll_interval_seconds
        self.started = time.monotonic()
        self.last_poll = None
        self.last_message = None
        self.server = None
        # Bound to the topic once: a labels() lookup per message is a measurable share of a fast consumer.
        self._processed = self._counter("messages_processed", "Messages whose receivers all succeeded.").labels(topic)
        self._duplicates = self._counter(
            "messages_duplicate", "Messages not emitted: the inbox had every receiver done (deduplication)."
        ).labels(topic)
        self._retried = self._counter(
            "messages_retried", "Messages whose failed receivers were retried at least once, whatever came of it."
        ).labels(topic)
        self._dead_lettered = self._counter(
            "messages_dead_lettered",
            "Messages written to the dead-letter topic, by reason (the dlt_reason header).",
            "reason",
        )
        self._skipped = self._counter(
            "messages_skipped", "Messages skipped (no dead-letter topic set), by reason.", "reason"
        )
        Gauge(
            PREFIX + "seconds_since_last_message",
            "Seconds since the consumer last received a message (or since it started, before the first).",
            ["topic"],
            registry=self.registry,
        ).labels(topic).set_function(self._seconds_since_last_message)

    def _counter(self, name, documentation, *labels):
        return Counter(PREFIX + name, documentation, ["topic", *labels], registry=self.registry)

    # ------------------------------------------------------------------ the endpoint

    def serve(self, address: str, port: int):
        """Start ``/metrics`` and ``/healthz``; ``MetricsServerError`` if the port cannot be had."""
        self.server = MetricsServer(self.registry, self.health, address=address, port=port)

    def close(self):
        if self.server is not None:
            self.server.close()
            self.server = None

    def health(self) -> Health:
        if self.last_poll is None:
            return Health(False, "starting: the consumer has not polled Kafka yet")
        age = time.monotonic() - self.last_poll
        if age <= self.poll_within:
            return Health(True, f"ok: polled Kafka {age:.1f}s ago")
        return Health(
            False,
            f"unhealthy: the consumer has not polled Kafka for {age:.0f}s, more than max.poll.interval.ms "
            f"({self.poll_within:g}s), after which Kafka gives its partitions to another consumer",
        )

    def _seconds_since_last_message(self):
        return time.monotonic() - (self.last_message or self.started)

    # ------------------------------------------------------------------ what the consumer reports

    def polled(self, msg):
        """After every ``poll()``; ``msg`` is what it returned (None, an error or a message)."""
        self.last_poll = time.monotonic()
        if msg is not None and msg.error() is None:
            self.last_message = self.last_poll

    def processed(self, retries):
        self._processed.inc()
        self._count_retries(retries)

    def duplicate(self):
        self._duplicates.inc()

    def dead_lettered(self, reason, retries):
        self._dead_lettered.labels(self.topic, reason).inc()
        self._count_retries(retries)

    def skipped(self, reason, retries):
        self._skipped.labels(self.topic, reason).inc()
        self._count_retries(retries)

    def _count_retries(self, retries):
        if retries:
            self._retried.inc()
