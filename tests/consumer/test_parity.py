"""
What edx-event-bus-kafka's consumer does, this one does too -- kill switch,
errors limit, monitoring attributes and traces, audit log lines, a database reconnect and a
RequestCache reset before each message.
"""

import logging

import pytest
from django.db import connection, connections
from edx_django_utils.cache import RequestCache
from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

from edx_event_bus_outbox.consumer import monitoring
from edx_event_bus_outbox.consumer.consumer import KafkaEventConsumer
from edx_event_bus_outbox.consumer.errors import ConsumerStuckError
from edx_event_bus_outbox.models import OutboxEvent
from tests.consumer.helpers import Received, connected, group_offsets, new_group, produce_events, run_until
from tests.factories import enrollment_event

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_kill_switch_exits_before_touching_kafka(settings, monkeypatch, caplog):
    settings.EVENT_BUS_KAFKA_CONSUMERS_ENABLED = False
    monkeypatch.setattr(
        "edx_event_bus_outbox.consumer.consumer.Consumer", lambda *a, **k: pytest.fail("a Kafka consumer was created")
    )
    KafkaEventConsumer(topic="t", group_id="g").consume_indefinitely()
    assert "Kafka consumers not enabled" in caplog.text


@pytest.mark.kafka
def test_too_many_consecutive_receiver_failures_exit_after_committing(topic, settings):
    settings.EVENT_BUS_KAFKA_CONSUMER_CONSECUTIVE_ERRORS_LIMIT = 2
    settings.EVENT_BUS_OUTBOX_CONSUMER_MAX_RETRIES = 0
    produce_events(topic, [enrollment_event() for _ in range(3)], partition=0)
    calls = []

    def broken(**kwargs):
        calls.append(1)
        raise RuntimeError("down")

    group = new_group()
    with connected(broken, COURSE_ENROLLMENT_CREATED), pytest.raises(ConsumerStuckError, match="2 consecutive"):
        run_until(topic, group, done=lambda: False)
    assert len(calls) == 2
    assert group_offsets(topic, group)[0] == 2, "the skipped messages were committed, the third not read"


@pytest.mark.kafka
def test_a_success_resets_the_consecutive_errors_count(topic, settings):
    settings.EVENT_BUS_KAFKA_CONSUMER_CONSECUTIVE_ERRORS_LIMIT = 2
    settings.EVENT_BUS_OUTBOX_CONSUMER_MAX_RETRIES = 0
    produce_events(topic, [enrollment_event() for _ in range(5)], partition=0)
    calls = []

    def every_other(**kwargs):
        calls.append(1)
        if len(calls) % 2:
            raise RuntimeError("odd calls fail")

    with connected(every_other, COURSE_ENROLLMENT_CREATED):
        run_until(topic, new_group(), done=lambda: len(calls) >= 5)
    assert len(calls) == 5


@pytest.mark.kafka
def test_monitoring_attributes_and_traces_match_edx_event_bus_kafka(topic, monkeypatch):
    [metadata] = produce_events(topic, [enrollment_event()], partition=1)
    attributes, traces = [], []
    monkeypatch.setattr(monitoring, "set_custom_attribute", lambda name, value: attributes.append((name, value)))
    real_trace = monitoring.function_trace
    monkeypatch.setattr(monitoring, "function_trace", lambda name: traces.append(name) or real_trace(name))
    received = Received()
    with connected(received, COURSE_ENROLLMENT_CREATED):
        run_until(topic, new_group(), done=lambda: received.ids)

    seen = dict(attributes)
    assert seen["kafka_topic"] == topic
    assert ("kafka_received_message", True) in attributes and ("kafka_received_message", False) in attributes
    assert (seen["kafka_partition"], seen["kafka_offset"]) == (1, 0)
    assert seen["kafka_message_id"] == str(metadata.id)
    assert seen["kafka_event_type"] == COURSE_ENROLLMENT_CREATED.event_type
    assert seen["django_version"] and seen["python_version"]
    assert (seen["kafka_message_outcome"], seen["kafka_receiver_retries"]) == ("processed", 0)
    assert {"consumer.consume", "emit_signals_from_message"} <= set(traces)


@pytest.mark.kafka
def test_audit_log_lines_name_the_message_and_can_be_turned_off(topic, settings, caplog):
    [metadata] = produce_events(topic, [enrollment_event()], partition=2)
    caplog.set_level(logging.INFO)
    received = Received()
    with connected(received, COURSE_ENROLLMENT_CREATED):
        run_until(topic, new_group(), done=lambda: received.ids)
    where = f"topic={topic} partition=2 offset=0 event_id={metadata.id} event_type={metadata.event_type}"
    [line] = [r.getMessage() for r in caplog.records if "Message from Kafka" in r.getMessage()]
    assert line.startswith(f"Message from Kafka processed successfully: {where} event_timestamp_ms=")
    assert int(line.rsplit("=", 1)[1]) > 0

    caplog.clear()
    settings.EVENT_BUS_KAFKA_AUDIT_LOGGING_ENABLED = False
    with connected(received, COURSE_ENROLLMENT_CREATED):
        run_until(topic, new_group(), done=lambda: len(received.ids) == 2)
    assert "Message from Kafka" not in caplog.text


def _break_connection_behind_djangos_back():
    """What a database restart or an idle timeout does to a long-lived consumer's connection."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        killer = connections.create_connection("default")
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        killer.close()
    elif connection.vendor == "mysql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT CONNECTION_ID()")
            thread_id = cursor.fetchone()[0]
        killer = connections.create_connection("default")
        with killer.cursor() as cursor:
            cursor.execute(f"KILL {int(thread_id)}")
        killer.close()
    else:  # SQLite has no server; closing the handle is the closest equivalent
        connection.connection.close()


@pytest.mark.kafka
def test_each_message_starts_with_a_working_database_and_an_empty_request_cache(topic):
    produce_events(topic, [enrollment_event(), enrollment_event()], partition=0)
    seen = []

    def uses_db_and_cache(**kwargs):
        cache = RequestCache("consumer-test")
        seen.append((OutboxEvent.objects.count(), cache.get_cached_response("left-over").is_found))
        cache.set("left-over", True)
        if len(seen) == 1:
            _break_connection_behind_djangos_back()

    with connected(uses_db_and_cache, COURSE_ENROLLMENT_CREATED):
        run_until(topic, new_group(), done=lambda: len(seen) >= 2)
    assert seen == [(0, False), (0, False)], "second message: fresh connection, nothing cached"
