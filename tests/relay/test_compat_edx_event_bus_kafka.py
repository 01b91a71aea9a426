"""
Wire compatibility with edx-event-bus-kafka 6.x, installed in the test environment.

* The same event sent by its producer and by our relay is byte-identical (key, value, headers).
* Its consumer reads what our relay produced and fires the signal with equal data and metadata.
"""

import threading

import pytest
from django.db import transaction
from edx_event_bus_kafka import KafkaEventConsumer as EdxConsumer
from edx_event_bus_kafka import create_producer as create_edx_producer
from openedx_events.data import EventsMetadata

from edx_event_bus_outbox import create_producer
from tests.factories import enrollment_event, sample_events
from tests.outbox_tools import drain

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka]


@pytest.mark.parametrize("index", range(len(sample_events())))
def test_our_relay_and_the_edx_producer_write_identical_messages(index, kafka_stack, topic):
    signal, key_field, data = sample_events()[index]
    metadata = EventsMetadata(event_type=signal.event_type)
    theirs = f"{topic}-edx"
    kafka_stack.create_topic(theirs, partitions=3)

    edx_producer = create_edx_producer()
    edx_producer.send(signal=signal, topic=theirs, event_key_field=key_field, event_data=data, event_metadata=metadata)
    assert edx_producer.producer.flush(30) == 0  # its prepare_for_shutdown() flushes without a time limit
    with transaction.atomic():
        create_producer().send(
            signal=signal, topic=topic, event_key_field=key_field, event_data=data, event_metadata=metadata
        )
    drain(topic)

    (ours_msg,) = kafka_stack.read_all(topic, expected=1)
    (edx_msg,) = kafka_stack.read_all(theirs, expected=1)
    assert ours_msg.key() == edx_msg.key()
    assert ours_msg.value() == edx_msg.value()
    assert ours_msg.headers() == edx_msg.headers()
    assert ours_msg.partition() == edx_msg.partition()  # same key bytes, same partitioner


def test_edx_event_bus_kafkas_consumer_reads_what_our_relay_produced(kafka_stack, topic):
    signal, key_field, data = enrollment_event()
    sent_metadata = EventsMetadata(event_type=signal.event_type)
    with transaction.atomic():
        create_producer().send(
            signal=signal, topic=topic, event_key_field=key_field, event_data=data, event_metadata=sent_metadata
        )
    drain(topic)

    group = f"edx-{topic}"
    kafka_stack.set_group_offsets(
        group, topic, offset=0
    )  # edx-event-bus-kafka's consumer starts a new group at the end
    consumer = EdxConsumer(topic, group)  # with our registry client (conftest), which times out
    received = []

    def receiver(**kwargs):
        received.append(kwargs)
        consumer._shut_down()

    signal.connect(receiver, weak=False, dispatch_uid="edx-compat")
    thread = threading.Thread(target=consumer.consume_indefinitely, daemon=True)
    try:
        thread.start()
        thread.join(timeout=60)
    finally:
        consumer._shut_down()
        thread.join(timeout=15)
        signal.disconnect(dispatch_uid="edx-compat")

    assert len(received) == 1, "edx-event-bus-kafka's consumer did not fire the signal"
    assert received[0]["enrollment"] == data["enrollment"]
    assert received[0]["metadata"] == sent_metadata
    assert received[0]["from_event_bus"] is True
