"""
Requirements 1 and 2: both wire formats in, the same signal data and metadata out.

Every shape of tests.factories goes through the real broker and registry, produced once by
edx-event-bus-kafka's own producer and once as our relay sends it (``encode_message``).
"""
import pytest
from django.test import override_settings
from edx_event_bus_kafka import create_producer as create_seed_producer

from tests.consumer.helpers import Received, connected, metadata_for, new_group, produce_events, run_until
from tests.factories import sample_events

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka]


def _signals(events):
    return {signal for signal, _, _ in events}


def _assert_received_exactly(received, events, metadatas):
    by_id = {str(kwargs["metadata"].id): (event_type, kwargs) for event_type, kwargs in received.calls}
    assert len(received.calls) == len(events) == len(by_id)
    for (signal, _, data), metadata in zip(events, metadatas):
        event_type, kwargs = by_id[str(metadata.id)]
        assert event_type == signal.event_type
        assert kwargs["metadata"] == metadata  # id, type, source, time, minorversion, sourcehost, sourcelib
        assert kwargs["from_event_bus"] is True
        assert {k: v for k, v in kwargs.items() if k not in ("metadata", "from_event_bus")} == data


def test_consumes_what_edx_event_bus_kafka_produces(topic, kafka_stack):
    events = sample_events()
    metadatas = [metadata_for(signal) for signal, _, _ in events]
    with override_settings(EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS=kafka_stack.bootstrap_servers,
                           EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL=kafka_stack.registry_url):
        seed = create_seed_producer()
        for (signal, key_field, data), metadata in zip(events, metadatas):
            seed.send(signal=signal, topic=topic, event_key_field=key_field, event_data=data, event_metadata=metadata)
        seed.prepare_for_shutdown()

    received = Received()
    with connected(received, *_signals(events)):
        run_until(topic, new_group(), done=lambda: len(received.calls) >= len(events))
    _assert_received_exactly(received, events, metadatas)


def test_consumes_what_our_relay_sends(topic):
    events = sample_events()
    metadatas = produce_events(topic, events)
    received = Received()
    with connected(received, *_signals(events)):
        run_until(topic, new_group(), done=lambda: len(received.calls) >= len(events))
    _assert_received_exactly(received, events, metadatas)


def test_topic_prefix_is_applied_to_the_consumed_topic(topic, kafka_stack, settings):
    settings.EVENT_BUS_TOPIC_PREFIX = "prefixed"
    kafka_stack.create_topic(f"prefixed-{topic}", partitions=1)
    events = sample_events()[:1]
    metadatas = produce_events(f"prefixed-{topic}", events)
    received = Received()
    with connected(received, *_signals(events)):
        run_until(topic, new_group(), done=lambda: received.ids)
    assert received.ids == [str(metadatas[0].id)]
