"""
Unusable messages never stop the consumer. Each kind is sent to the real broker,
followed by a good event; each is dead-lettered (or logged and skipped) without its payload.
"""

import logging

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

from edx_event_bus_outbox.consumer.errors import ConsumerStuckError
from edx_event_bus_outbox.kafka import decoding
from tests.consumer.helpers import (
    Received,
    assert_everything_committed,
    assert_no_payload_logged,
    connected,
    encoded,
    group_offsets,
    header_dict,
    new_group,
    produce_events,
    produce_raw,
    run_until,
)
from tests.factories import enrollment_event
from tests.kafka_tools import REGISTRY_TIMEOUT

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka]


def _without(headers, name):
    return [(key, value) for key, value in headers if key != name]


def unusable_messages(topic):
    """``(expected dlt_reason, message)`` for each kind of unusable message, and the events used."""
    events = [enrollment_event() for _ in range(3)]
    good = encoded(*events[0], topic)
    other = encoded(*events[1], topic)
    unknown_schema_id = (2**31 - 7).to_bytes(4, "big")
    ce_type = [(k, v) for k, v in good.headers if k == "ce_type"]
    kinds = [
        ("bad_framing", {"value": b"\x01" + good.value[1:]}),  # bad magic byte
        ("undecodable_value", {"value": good.value[:8]}),  # truncated Avro body
        ("unknown_schema", {"value": b"\x00" + unknown_schema_id + good.value[5:]}),
        (
            "unknown_event_type",
            {"headers": [(k, b"org.openedx.no.such.event.v1" if k == "ce_type" else v) for k, v in good.headers]},
        ),
        ("missing_event_type", {"headers": _without(good.headers, "ce_type")}),
        ("multiple_event_types", {"headers": good.headers + ce_type}),
        ("bad_headers", {"headers": _without(good.headers, "ce_id")}),  # missing ce_id
        ("empty_value", {"value": None}),
        ("empty_value", {"value": b""}),
    ]
    messages = [
        (reason, {"key": good.key, "value": good.value, "headers": good.headers, **change}) for reason, change in kinds
    ]
    return messages, {"key": other.key, "value": other.value, "headers": other.headers}, events


def _run_through_unusable_messages(topic, settings, caplog):
    settings.EVENT_BUS_KAFKA_CONSUMER_CONSECUTIVE_ERRORS_LIMIT = 1  # unusable messages do not count
    messages, last, events = unusable_messages(topic)
    produce_raw(topic, [message for _, message in messages] + [last], partition=0)
    last_id = header_dict_of(last)["ce_id"]
    received, group = Received(), new_group()
    caplog.set_level(logging.INFO)
    with connected(received, COURSE_ENROLLMENT_CREATED):
        run_until(topic, group, done=lambda: received.ids)
    assert received.ids == [last_id], "the good event after them was emitted"
    assert group_offsets(topic, group)[0] == len(messages) + 1, "every message was committed"
    assert_no_payload_logged(caplog.text, events)
    return messages, group


def header_dict_of(message):
    return {name: value.decode() for name, value in message["headers"]}


def test_each_unusable_message_is_dead_lettered_unchanged_with_its_reason(topic, settings, kafka_stack, caplog):
    dead_letter_topic = f"{topic}-dlt"
    kafka_stack.create_topic(dead_letter_topic)
    settings.EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TOPIC = dead_letter_topic
    messages, group = _run_through_unusable_messages(topic, settings, caplog)

    dead = kafka_stack.read_all(dead_letter_topic)
    assert [header_dict(m)["dlt_reason"] for m in dead] == [reason for reason, _ in messages]
    for letter, (_, original) in zip(dead, messages, strict=False):
        assert letter.key() == original["key"]
        assert (letter.value() or None) == (original["value"] or None)  # Kafka keeps no difference
        assert letter.headers()[: len(original["headers"])] == original["headers"]
        assert header_dict(letter)["dlt_consumer_group"] == group
    assert [int(header_dict(m)["dlt_original_offset"]) for m in dead] == list(range(len(messages)))


def test_without_a_dead_letter_topic_each_is_logged_without_payload_and_skipped(topic, settings, caplog):
    messages, _ = _run_through_unusable_messages(topic, settings, caplog)
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Message skipped")]
    assert [line.split("(")[1].split(";")[0] for line in skipped] == [reason for reason, _ in messages]
    assert all(f"partition=0 offset={offset} " in line for offset, line in enumerate(skipped))


def test_an_unreachable_registry_is_waited_out_never_skipped(topic, settings, monkeypatch):
    # A registry outage is not the message's fault: the consumer retries the same message and,
    # with the errors limit, exits without committing it.
    settings.EVENT_BUS_KAFKA_CONSUMER_CONSECUTIVE_ERRORS_LIMIT = 3
    produce_events(topic, [(enrollment_event())], partition=0)
    unreachable = SchemaRegistryClient({"url": "http://127.0.0.1:9", "max.retries": 0, "timeout": REGISTRY_TIMEOUT})
    monkeypatch.setattr(decoding, "schema_registry_client", lambda: unreachable)
    decoding.writer_schema.cache_clear()
    received, group = Received(), new_group()
    with connected(received, COURSE_ENROLLMENT_CREATED), pytest.raises(ConsumerStuckError):
        run_until(topic, group, done=lambda: False)
    assert received.calls == []
    assert group_offsets(topic, group)[0] < 0, "not committed: it will be read again"


def test_consumption_resumes_once_the_registry_is_back(topic, monkeypatch):
    [metadata] = produce_events(topic, [enrollment_event()], partition=0)
    unreachable = SchemaRegistryClient({"url": "http://127.0.0.1:9", "max.retries": 0, "timeout": REGISTRY_TIMEOUT})
    real = decoding.schema_registry_client
    attempts = []

    def flaky_registry():
        attempts.append(1)
        return unreachable if len(attempts) <= 2 else real()

    monkeypatch.setattr(decoding, "schema_registry_client", flaky_registry)
    decoding.writer_schema.cache_clear()
    received, group = Received(), new_group()
    with connected(received, COURSE_ENROLLMENT_CREATED):
        run_until(topic, group, done=lambda: received.ids)
    assert received.ids == [str(metadata.id)]
    assert len(attempts) == 3
    assert_everything_committed(topic, group)
