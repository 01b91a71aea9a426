"""Produce to, consume from and inspect the real broker for the consumer tests."""

import threading
import time
import uuid
from contextlib import contextmanager

from confluent_kafka import Consumer, Producer, TopicPartition
from django.conf import settings
from openedx_events.data import EventsMetadata

from edx_event_bus_outbox.consumer.consumer import KafkaEventConsumer
from edx_event_bus_outbox.kafka.headers import headers_from_metadata
from edx_event_bus_outbox.kafka.messages import encode_message
from edx_event_bus_outbox.kafka.schemas import extract_event_key, signal_serializer


def new_group():
    return f"group-{uuid.uuid4().hex[:12]}"


def metadata_for(signal, **overrides):
    return EventsMetadata(event_type=signal.event_type, minorversion=0, **overrides)


def encoded(signal, key_field, data, topic, metadata=None):
    """The exact message our relay sends for this event (``encode_message``)."""
    metadata = metadata or metadata_for(signal)
    payload = signal_serializer(signal).to_dict(data)
    return encode_message(
        signal=signal,
        topic=topic,
        event_key_field=key_field,
        event_key=extract_event_key(payload, key_field),
        payload=payload,
        headers=headers_from_metadata(metadata),
    )


def produce_raw(topic, messages, partition=None):
    """``messages``: dicts of key/value/headers; waits for every acknowledgement."""
    producer = Producer({"bootstrap.servers": settings.EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS, "enable.idempotence": True})
    errors = []
    for message in messages:
        extra = {} if partition is None else {"partition": partition}
        producer.produce(
            topic,
            key=message.get("key"),
            value=message.get("value"),
            headers=message.get("headers"),
            on_delivery=lambda err, msg: errors.append(err) if err else None,
            **extra,
        )
    assert producer.flush(30) == 0 and not errors, errors


def produce_events(topic, events, partition=None):
    """``events``: ``(signal, key_field, data)``; returns the metadata of each, in order."""
    metadatas, messages = [], []
    for signal, key_field, data in events:
        metadata = metadata_for(signal)
        message = encoded(signal, key_field, data, topic, metadata)
        metadatas.append(metadata)
        messages.append({"key": message.key, "value": message.value, "headers": message.headers})
    produce_raw(topic, messages, partition)
    return metadatas


class Received:
    """A receiver for several signals that records every call; ``wait_for`` polls a condition."""

    def __init__(self):
        self.calls = []  # (signal event_type, kwargs)
        self.lock = threading.Lock()

    def __call__(self, signal, sender, **kwargs):
        with self.lock:
            self.calls.append((signal.event_type, kwargs))

    @property
    def ids(self):
        return [str(kwargs["metadata"].id) for _, kwargs in self.calls]


@contextmanager
def connected(receiver, *signals, uid=None):
    uid = uid or f"test-{uuid.uuid4().hex}"
    for signal in signals:
        signal.connect(receiver, weak=False, dispatch_uid=uid)
    try:
        yield receiver
    finally:
        for signal in signals:
            signal.disconnect(dispatch_uid=uid)


def run_until(consumer_or_topic, group=None, *, done, timeout=30.0, **options):
    """
    Run a consumer in this (main) thread until ``done()`` is true (checked every 50 ms by a
    watcher thread that then calls ``stop()``) or ``timeout`` passes; returns the consumer.
    """
    consumer = (
        consumer_or_topic
        if isinstance(consumer_or_topic, KafkaEventConsumer)
        else KafkaEventConsumer(topic=consumer_or_topic, group_id=group, **options)
    )
    finished = threading.Event()

    def watch():
        deadline = time.monotonic() + timeout
        while not finished.is_set() and time.monotonic() < deadline:
            if done():
                break
            time.sleep(0.05)
        consumer.stop()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        consumer.consume_indefinitely()
    finally:
        finished.set()
        watcher.join()
    return consumer


def group_offsets(topic, group):
    """``{partition: committed offset}`` of ``group`` (negative when nothing is committed)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: tp.offset for tp in committed}
    finally:
        consumer.close()


def end_offsets(topic):
    consumer = Consumer({"bootstrap.servers": settings.EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS, "group.id": new_group()})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()


def assert_no_payload_logged(log_text, events):
    """No personal data of the events (usernames, emails, names) appears in the log text."""
    for _, _, data in events:
        user = getattr(data.get("enrollment"), "user", None) or data.get("user")
        if user is not None and user.pii is not None:
            for secret in (user.pii.username, user.pii.email, user.pii.name):
                assert secret not in log_text, f"payload value {secret!r} was logged"


def header_dict(msg):
    return {name: value.decode("utf-8") for name, value in msg.headers() or []}


def uncommitted(topic, group):
    """``{partition: (committed, end)}`` of the partitions whose messages ``group`` has not all committed."""
    committed = group_offsets(topic, group)
    return {
        partition: (committed[partition], end)
        for partition, end in end_offsets(topic).items()
        if not (committed[partition] == end or (end == 0 and committed[partition] < 0))  # empty: nothing to commit
    }


def assert_everything_committed(topic, group):
    """Every message of every partition is committed (empty partitions need no commit)."""
    assert not uncommitted(topic, group)
