"""Permanent and retriable failures, against the real broker and registry."""

import json
import logging
import socket
import threading

import pytest
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.schema_registry import Schema
from django.core.management import call_command
from django.db import transaction
from openedx_events.content_authoring.signals import XBLOCK_PUBLISHED
from openedx_events.data import EventsMetadata
from openedx_events.event_bus.avro.deserializer import AvroSignalDeserializer

from edx_event_bus_outbox import create_producer
from edx_event_bus_outbox.exceptions import OutboxConfigurationError
from edx_event_bus_outbox.kafka.config import schema_registry_client
from edx_event_bus_outbox.kafka.headers import header_values
from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.relay.relay import Relay, RelayOptions
from tests.factories import CourseDataFactory, CourseEnrollmentDataFactory, XBlockDataFactory, enrollment_event
from tests.kafka_tools import stack_service
from tests.outbox_tools import drain, write_events
from tests.relay.checker import check

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka]

FAST_RETRIES = {"max_attempts": 3, "dead_after_seconds": 0, "backoff": (0.01, 0.05)}


def published_ids(kafka_stack, topic, expected=None):
    return [
        header_values(m.headers(), "ce_id")[0]
        for m in sorted(kafka_stack.read_all(topic, expected=expected), key=lambda m: (m.partition(), m.offset()))
    ]


def test_unknown_event_type_goes_dead_after_max_attempts_and_the_lane_moves_on(topic, kafka_stack, caplog):
    write_events(topic, 1)
    ghost = OutboxEvent.objects.get()
    ghost.pk, ghost.event_type = None, "org.openedx.removed.event.v1"
    ghost.event_id = "00000000-0000-0000-0000-000000000001"
    ghost.save()
    write_events(topic, 2)

    with caplog.at_level(logging.ERROR):
        relay = drain(topic, **FAST_RETRIES)

    ghost.refresh_from_db()
    assert ghost.status == OutboxEvent.STATUS.dead and ghost.attempts == 3
    assert "no OpenEdxPublicSignal of type 'org.openedx.removed.event.v1'" in ghost.last_error
    assert relay.sent_total == 2 and relay.dead_total == 1
    # The later event of the ghost's key waits behind it (ADR 11); the other key's goes out.
    assert list(OutboxEvent.objects.order_by("id").values_list("status", flat=True)) == [
        OutboxEvent.STATUS.sent,
        OutboxEvent.STATUS.dead,
        OutboxEvent.STATUS.held,
        OutboxEvent.STATUS.sent,
    ]
    assert len(published_ids(kafka_stack, topic, expected=2)) == 2
    assert str(ghost.event_id) in caplog.text and "dead" in caplog.text
    pii = ghost.payload["enrollment"]["user"]["pii"]  # never the payload, in whatever quoting
    assert pii["email"] and not any(value in caplog.text for value in pii.values())


def test_a_value_that_does_not_fit_the_schema_is_in_last_error_but_never_in_the_logs(topic, kafka_stack, caplog):
    """Avro errors quote the value that did not fit, and that value may be PII."""
    write_events(topic, 1)
    broken = OutboxEvent.objects.get()
    secret = "learner-secret@example.com"
    # course.end is a ["null", "string"] union; fastavro quotes the value no branch accepts
    broken.payload["enrollment"]["course"]["end"] = {"email": secret}
    broken.save()
    write_events(topic, 2)  # the first has broken's key and waits behind it (ADR 11), the second goes out

    with caplog.at_level(logging.INFO):
        relay = drain(topic, **FAST_RETRIES)

    broken.refresh_from_db()
    assert broken.status == OutboxEvent.STATUS.dead and relay.sent_total == 1
    assert secret in broken.last_error  # the operator's evidence, behind the admin's payload permission
    assert str(broken.event_id) in caplog.text and "while encoding the event" in caplog.text
    assert secret not in caplog.text


def test_a_registry_that_never_answers_times_out_instead_of_hanging_the_relay(topic, settings, caplog):
    """A listening socket that accepts connections and never replies: the relay must back off, not block."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    settings.EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL = f"http://127.0.0.1:{silent.getsockname()[1]}"
    settings.EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_TIMEOUT_SECONDS = 0.3
    write_events(topic, 2)
    outcome = {}
    relay = Relay(RelayOptions(lanes=[topic], poll_interval=0.2, backoff=(0.1, 0.2)))
    try:
        with caplog.at_level(logging.WARNING):
            worker = threading.Thread(target=lambda: outcome.update(sent=relay.relay_once()), daemon=True)
            worker.start()
            worker.join(timeout=60)
            assert not worker.is_alive(), "the relay is still waiting for the registry"
    finally:
        silent.close()
    assert outcome["sent"] == 0
    assert OutboxEvent.objects.filter(status=OutboxEvent.STATUS.pending).count() == 2  # nothing lost or dead
    assert "waiting for Kafka or the schema registry" in caplog.text and "Timeout" in caplog.text


def test_the_registry_timeout_must_be_positive(settings):
    settings.EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_TIMEOUT_SECONDS = 0
    with pytest.raises(OutboxConfigurationError, match="EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_TIMEOUT_SECONDS"):
        schema_registry_client()


def test_too_large_event_goes_dead_then_is_requeued_and_delivered(kafka_stack, topic):
    small = f"{topic}-small"
    kafka_stack.create_topic(small, partitions=1)
    _set_topic_config(kafka_stack, small, "max.message.bytes", "1500")
    signal, key_field, _ = enrollment_event()
    with transaction.atomic():
        big = {"enrollment": CourseEnrollmentDataFactory(course=CourseDataFactory(display_name="x" * 4000))}
        create_producer().send(
            signal=signal,
            topic=small,
            event_key_field=key_field,
            event_data=big,
            event_metadata=EventsMetadata(event_type=signal.event_type),
        )
    write_events(small, 2)

    drain(small, **FAST_RETRIES)
    big_row = OutboxEvent.objects.order_by("id").first()
    assert big_row.status == OutboxEvent.STATUS.dead
    assert "MSG_SIZE_TOO_LARGE" in big_row.last_error
    assert len(published_ids(kafka_stack, small, expected=2)) == 2

    _set_topic_config(kafka_stack, small, "max.message.bytes", "1000000")
    call_command("requeue_outbox", "--id", str(big_row.id))
    big_row.refresh_from_db()
    assert big_row.status == OutboxEvent.STATUS.pending and big_row.attempts == 0
    drain(small, **FAST_RETRIES)
    assert str(big_row.event_id) in published_ids(kafka_stack, small)  # all: the small ones may be there twice
    assert OutboxEvent.objects.get(id=big_row.id).status == OutboxEvent.STATUS.sent


def _set_topic_config(kafka_stack, topic, name, value):
    resource = ConfigResource(
        "topic", topic, incremental_configs=[ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)]
    )
    for future in kafka_stack.admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def test_schema_incompatible_with_the_registered_one_goes_dead(kafka_stack, topic):
    signal, _, _ = enrollment_event()
    registry = kafka_stack.registry()
    incompatible = {
        "type": "record",
        "name": "CloudEvent",
        "namespace": signal.event_type,
        "fields": [{"name": "enrollment", "type": "string"}],
    }
    registry.register_schema(f"{topic}-{signal.event_type}.CloudEvent", Schema(json.dumps(incompatible), "AVRO"))
    write_events(topic, 1)

    drain(topic, **FAST_RETRIES)
    row = OutboxEvent.objects.get()
    assert row.status == OutboxEvent.STATUS.dead
    assert "schema registry rejected" in row.last_error
    assert kafka_stack.read_all(topic) == []


def test_an_event_written_before_its_schema_gained_an_optional_field_is_relayed(kafka_stack, topic):
    data = {"xblock_info": XBlockDataFactory()}
    with transaction.atomic():
        create_producer().send(
            signal=XBLOCK_PUBLISHED,
            topic=topic,
            event_key_field="xblock_info.usage_key",
            event_data=data,
            event_metadata=EventsMetadata(event_type=XBLOCK_PUBLISHED.event_type),
        )
    row = OutboxEvent.objects.get()
    del row.payload["xblock_info"]["version"]  # as written by a service whose XBlockData had no `version`
    row.save(update_fields=["payload"])

    drain(topic)
    (message,) = kafka_stack.read_all(topic, expected=1)
    from confluent_kafka.schema_registry.avro import AvroDeserializer

    from edx_event_bus_outbox.kafka.schemas import signal_serializer

    value = AvroDeserializer(kafka_stack.registry(), signal_serializer(XBLOCK_PUBLISHED).schema_string())(
        message.value(), None
    )
    assert AvroSignalDeserializer(XBLOCK_PUBLISHED).from_dict(value) == data  # version read back as None


@pytest.mark.stack_restart
def test_registry_down_then_up_delays_but_loses_nothing(kafka_stack, topic, caplog):
    written = write_events(topic, 30, keys=3)
    stack_service("stop", "registry")
    relay_thread = _relay_in_thread(topic)
    try:
        relay_thread.join(timeout=4)
        assert relay_thread.is_alive(), "the relay must keep running while the registry is down"
        assert OutboxEvent.objects.filter(status=OutboxEvent.STATUS.pending, attempts=0).count() == 30
    finally:
        stack_service("start", "registry")
    relay_thread.join(timeout=120)
    assert not relay_thread.is_alive()
    verdict = check(kafka_stack.read_all(topic, expected=30), [str(m.id) for m in written])
    assert verdict.ok() and verdict.duplicates == 0, verdict.summary()
    outage_lines = [r for r in caplog.records if r.levelno == logging.WARNING and "waiting for Kafka" in r.getMessage()]
    assert len(outage_lines) == 1  # one line when the outage starts, not one per event or retry
    assert "running again" in caplog.text


@pytest.mark.stack_restart
def test_broker_restart_mid_drain_loses_nothing_and_keeps_order(kafka_stack, topic):
    written = write_events(topic, 1500, keys=7, per_transaction=50)
    relay_thread = _relay_in_thread(topic, batch_size=50)
    relay_thread.join(timeout=0.5)
    stack_service("restart", "kafka")
    relay_thread.join(timeout=180)
    assert not relay_thread.is_alive()
    verdict = check(kafka_stack.read_all(topic, timeout=60), [str(m.id) for m in written])
    assert verdict.ok(), verdict.summary()
    assert OutboxEvent.objects.exclude(status=OutboxEvent.STATUS.sent).count() == 0


def _relay_in_thread(topic, **options):
    thread = threading.Thread(target=drain, args=(topic,), kwargs={"backoff": (0.2, 2.0), **options}, daemon=True)
    thread.start()
    return thread
