"""The relay against the real broker and registry: delivery, order, marking, wire format."""

from collections import defaultdict

import pytest
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from edx_event_bus_outbox.kafka.headers import header_values, headers_from_metadata
from edx_event_bus_outbox.kafka.schemas import key_schema_string, signal_serializer
from edx_event_bus_outbox.models import OutboxEvent, RelayLease
from tests.factories import enrollment_event
from tests.outbox_tools import drain, write_events

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka]


def test_relay_publishes_every_row_once_in_order_and_marks_it_sent(topic, kafka_stack):
    written = write_events(topic, 120, keys=6)
    relay = drain(topic, batch_size=25)

    messages = kafka_stack.read_all(topic, expected=120)
    assert relay.sent_total == 120
    assert len(messages) == 120
    ids_by_key = defaultdict(list)
    for message in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        ids_by_key[message.key()].append(header_values(message.headers(), "ce_id")[0])
    rows = OutboxEvent.objects.order_by("id")
    expected_by_key = defaultdict(list)
    for row in rows:
        expected_by_key[kafka_key_bytes(messages, str(row.event_id))].append(str(row.event_id))
    assert ids_by_key == expected_by_key  # per key: the same events, in commit (id) order
    assert {str(m.id) for m in written} == {str(r.event_id) for r in rows}

    placed = {header_values(m.headers(), "ce_id")[0]: (m.partition(), m.offset()) for m in messages}
    for row in rows:
        assert row.status == OutboxEvent.STATUS.sent and row.sent_at is not None
        assert (row.partition, row.offset) == placed[str(row.event_id)]
    assert RelayLease.objects.get(lane=topic).last_sent_at is not None


def kafka_key_bytes(messages, event_id):
    return next(m.key() for m in messages if header_values(m.headers(), "ce_id")[0] == event_id)


def test_message_has_the_exact_headers_key_and_value(topic, kafka_stack):
    (metadata,) = write_events(topic, 1)
    drain(topic)
    (message,) = kafka_stack.read_all(topic, expected=1)
    row = OutboxEvent.objects.get()
    signal, key_field, _ = enrollment_event()

    assert message.headers() == headers_from_metadata(metadata)
    assert [name for name, _ in message.headers()] == [
        "ce_specversion",
        "content-type",
        "ce_datacontenttype",
        "ce_type",
        "ce_id",
        "ce_source",
        "ce_time",
        "ce_minorversion",
        "sourcehost",
        "sourcelib",
    ]
    registry = kafka_stack.registry()
    value = AvroDeserializer(registry, signal_serializer(signal).schema_string())(
        message.value(), SerializationContext(topic, MessageField.VALUE)
    )
    key = AvroDeserializer(registry, key_schema_string(signal, key_field))(
        message.key(), SerializationContext(topic, MessageField.KEY)
    )
    assert value == row.payload
    assert key == row.event_key == str(row.payload["enrollment"]["course"]["course_key"])
    assert message.value()[0] == 0 and message.key()[0] == 0  # Confluent framing
    subjects = registry.get_subjects()
    assert f"{topic}-{signal.event_type}.CloudEvent" in subjects
    assert f"{topic}-string" in subjects


def test_topic_prefix_is_applied_on_the_broker_only(settings, kafka_stack, topic):
    settings.EVENT_BUS_TOPIC_PREFIX = "stage"
    kafka_stack.create_topic(f"stage-{topic}", partitions=1)
    write_events(topic, 2)
    drain(topic)
    assert len(kafka_stack.read_all(f"stage-{topic}", expected=2)) == 2
    assert set(OutboxEvent.objects.values_list("topic", flat=True)) == {topic}


def test_delete_on_ack_removes_acknowledged_rows(topic, kafka_stack):
    write_events(topic, 5)
    drain(topic, delete_on_ack=True)
    assert len(kafka_stack.read_all(topic, expected=5)) == 5
    assert OutboxEvent.objects.count() == 0


def test_rows_whose_schemas_are_known_are_encoded_on_the_relays_thread(topic, kafka_stack):
    """
    Only a registry look-up needs the encoder thread (nothing interrupts it; the batch deadline
    must). Once both schema ids of a topic are known, rows are encoded and produced one by one
    on the relay's thread, so the broker receives the first before the last is encoded.
    """
    from edx_event_bus_outbox.relay import store
    from edx_event_bus_outbox.relay.sink import KafkaSink

    write_events(topic, 6)
    sink = KafkaSink(30.0)
    try:
        first, *rest = store.pending_batch("default", topic, 6)
        assert [d.error for d in sink.publish([first])] == [None]
        assert sink.encoder is not None  # the topic's first message: looked up on the encoder thread
        sink.encoder = None
        deliveries = sink.publish(rest)
        assert [d.error for d in deliveries] == [None] * 5
        assert sink.encoder is None  # no thread for rows needing no look-up
    finally:
        sink.close()
