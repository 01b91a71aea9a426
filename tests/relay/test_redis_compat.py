"""
Wire compatibility with edx-event-bus-redis 1.1 (Tutor's default event bus), against the stack's Redis.

* The same event written by its producer and by our relay is the same stream entry, field for
  field and byte for byte, in a stream of the same name.
* Its own ``RedisEventConsumer`` reads what our relay wrote and fires every signal under test
  with equal data and metadata.
* One relay sends some topics to Kafka and others to Redis; MAXLEN trims as it does.
"""

import io
import threading

import pytest
import redis
from django.core.management import call_command
from django.db import transaction
from edx_event_bus_redis import RedisEventConsumer
from edx_event_bus_redis import create_producer as create_edx_redis_producer
from edx_event_bus_redis.internal import consumer as edx_redis_consumer

from edx_event_bus_outbox import create_producer
from edx_event_bus_outbox.kafka.headers import header_values
from edx_event_bus_outbox.models import OutboxEvent
from tests.consumer.helpers import Received, connected, metadata_for
from tests.consumer.test_compat import _assert_received_exactly
from tests.factories import sample_events
from tests.outbox_tools import drain, write_events
from tests.redis_tools import read_stream

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def send_to_outbox(topic, events):
    """Commit each ``(signal, key field, data)`` to the outbox; returns their metadata."""
    metadatas = [metadata_for(signal) for signal, _, _ in events]
    for (signal, key_field, data), metadata in zip(events, metadatas, strict=True):
        with transaction.atomic():
            create_producer().send(
                signal=signal, topic=topic, event_key_field=key_field, event_data=data, event_metadata=metadata
            )
    return metadatas


@pytest.mark.parametrize("prefix", [None, "stage"], ids=["no-prefix", "prefix"])
def test_our_relay_and_the_edx_redis_producer_write_identical_entries(redis_topic, settings, prefix):
    settings.EVENT_BUS_TOPIC_PREFIX = prefix
    full = f"{prefix}-{redis_topic}" if prefix else redis_topic
    events = sample_events()
    metadatas = send_to_outbox(redis_topic, events)
    drain(redis_topic)

    edx_producer = create_edx_redis_producer()
    for (signal, key_field, data), metadata in zip(events, metadatas, strict=True):
        edx_producer.send(
            signal=signal,
            topic=f"{redis_topic}-edx",
            event_key_field=key_field,
            event_data=data,
            event_metadata=metadata,
        )
    ours = [fields for _, fields in read_stream(settings.EVENT_BUS_REDIS_CONNECTION_URL, full)]
    theirs = [fields for _, fields in read_stream(settings.EVENT_BUS_REDIS_CONNECTION_URL, f"{full}-edx")]
    assert len(ours) == len(theirs) == len(events)
    for our_fields, their_fields in zip(ours, theirs, strict=True):
        assert list(our_fields.items()) == list(their_fields.items())  # same fields, same order, same bytes


def test_edx_redis_consumer_reads_every_signal_our_relay_wrote(redis_topic, monkeypatch):
    events = sample_events()
    metadatas = send_to_outbox(redis_topic, events)
    drain(redis_topic)

    # Its blocking read lasts EVENT_BUS_REDIS_CONSUMER_POLL_TIMEOUT (60 s, read at import): shorter
    # here, so that the loop sees the shut-down flag soon. It must run in the main thread: it
    # times its reads with SIGALRM.
    monkeypatch.setattr(edx_redis_consumer, "CONSUMER_POLL_TIMEOUT", 1)
    consumer = RedisEventConsumer(redis_topic, "compat-group", "compat-consumer", check_backlog=True)
    received = Received()

    def shut_down_once_all_arrived(signal, sender, **kwargs):
        if len(received.calls) >= len(events):
            consumer._shut_down()

    give_up = threading.Timer(60, consumer._shut_down)
    signals = {signal for signal, _, _ in events}
    with connected(received, *signals), connected(shut_down_once_all_arrived, *signals):
        give_up.start()
        try:
            consumer.consume_indefinitely()
        finally:
            give_up.cancel()
    _assert_received_exactly(received, events, metadatas)


def test_one_relay_sends_some_topics_to_kafka_and_others_to_redis(redis_topic, topic, kafka_stack, settings):
    kafka_ids = [str(m.id) for m in write_events(topic, 6)]
    redis_ids = [str(m.id) for m in write_events(redis_topic, 6)]

    relay = drain()  # every lane, one relay
    assert relay.sent_total == 12
    assert OutboxEvent.objects.exclude(status=OutboxEvent.STATUS.sent).count() == 0
    on_kafka = [header_values(m.headers(), "ce_id")[0] for m in kafka_stack.read_all(topic, expected=6)]
    in_redis = [
        fields[b"id"].decode() for _, fields in read_stream(settings.EVENT_BUS_REDIS_CONNECTION_URL, redis_topic)
    ]
    assert sorted(on_kafka) == sorted(kafka_ids)
    assert in_redis == redis_ids  # one stream: commit order
    assert read_stream(settings.EVENT_BUS_REDIS_CONNECTION_URL, topic) == []  # Kafka's topic is not in Redis


def test_each_xadd_trims_the_stream_to_about_max_len_while_the_outbox_keeps_every_row(redis_topic, settings):
    settings.EVENT_BUS_REDIS_STREAM_MAX_LEN = 100
    write_events(redis_topic, 600, per_transaction=50)
    drain(redis_topic)
    length = len(read_stream(settings.EVENT_BUS_REDIS_CONNECTION_URL, redis_topic))
    assert 100 <= length < 300, length  # approximate: Redis trims whole nodes (100 entries each by default)
    assert OutboxEvent.objects.filter(status=OutboxEvent.STATUS.sent).count() == 600


def test_replay_refills_a_stream_that_redis_evicted_with_the_same_entries(redis_topic, settings):
    events = sample_events()
    send_to_outbox(redis_topic, events)
    drain(redis_topic)
    url = settings.EVENT_BUS_REDIS_CONNECTION_URL
    originals = [fields for _, fields in read_stream(url, redis_topic)]
    assert len(originals) == len(events)
    client = redis.Redis.from_url(url, socket_timeout=10)
    client.delete(redis_topic)  # what allkeys-lru eviction does to a stream
    client.close()

    call_command("replay_outbox", "--all", "--topic", redis_topic, stdout=io.StringIO(), stderr=io.StringIO())

    assert [fields for _, fields in read_stream(url, redis_topic)] == originals
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {"sent"}
