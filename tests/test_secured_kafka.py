"""
Every Kafka client of the package against the stack's SASL_SSL listener (SCRAM-SHA-512 over TLS),
and every registry client against the registry's HTTPS port.

Each test points ``EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS`` at that listener only, and the registry URL
at that port only, so a client that did not take ``EVENT_BUS_OUTBOX_KAFKA_CONFIG`` or
``EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_CONFIG`` (with the stack's CA) could not work at all. The
tests read and write their fixtures through the PLAINTEXT listener and HTTP port.
"""

import json
import logging
import time

import pytest
from django.db import transaction

from edx_event_bus_outbox.kafka import errors as kafka_errors
from edx_event_bus_outbox.kafka.config import schema_registry_client
from edx_event_bus_outbox.kafka.headers import header_values
from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.outbox import on_commit
from edx_event_bus_outbox.relay.relay import Relay, RelayOptions
from tests.consumer.helpers import Received, connected, produce_raw, run_until
from tests.consumer.poison import framed, good_message
from tests.factories import enrollment_event
from tests.outbox_tools import drain, manage, wait_for, write_events
from tests.relay.test_relay_leases import run_in_thread
from tests.test_producer import caller_writes, emit, route

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka, pytest.mark.timeout(180)]

WRONG_PASSWORD = "not-the-scram-password-0f3c"


def ce_ids(messages):
    return [header_values(m.headers(), "ce_id")[0] for m in messages]


def test_the_relay_publishes_over_sasl_ssl(topic, kafka_stack, secured_stack, settings):
    written = write_events(topic, 20, keys=4)
    secured_stack.use(settings)
    relay = drain(topic)
    assert relay.sent_total == 20
    assert sorted(ce_ids(kafka_stack.read_all(topic, expected=20))) == sorted(str(m.id) for m in written)
    assert not OutboxEvent.objects.exclude(status=OutboxEvent.STATUS.sent).exists()


def test_the_on_commit_mode_publishes_over_sasl_ssl(bus, topic, kafka_stack, secured_stack, settings, monkeypatch):
    monkeypatch.setattr(on_commit, "_producer", None)  # one producer per process: make this test's own
    secured_stack.use(settings)
    signal, key_field, data = enrollment_event()
    route(bus, signal, key_field, topics=(topic,), mode="on-commit")
    with transaction.atomic():
        caller_writes()
        emit(signal, data)
    assert on_commit.flush(30) == 0
    [message] = kafka_stack.read_all(topic, expected=1)
    assert header_values(message.headers(), "ce_type") == [signal.event_type]
    assert OutboxEvent.objects.count() == 0


def test_the_consumer_and_its_dead_letter_producer_work_over_sasl_ssl(topic, kafka_stack, secured_stack, settings):
    dead_letter_topic = f"{topic}-dlt"
    kafka_stack.create_topic(dead_letter_topic)
    good, unusable = good_message(topic), good_message(topic)
    unusable.message["value"] = framed(2**31 - 1, b"no such schema id")  # the registry has no such id
    produce_raw(topic, [unusable.message, good.message], partition=0)  # through PLAINTEXT
    secured_stack.use(settings)
    settings.EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG = {"auto.offset.reset": "earliest"}  # on top of the SASL ones
    settings.EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TOPIC = dead_letter_topic

    received = Received()
    with connected(received, enrollment_event()[0]):
        run_until(topic, f"group-{topic}", done=lambda: len(received.calls) >= 1)
    assert received.ids == [str(good.metadata.id)]
    [letter] = kafka_stack.read_all(dead_letter_topic, expected=1)
    assert ce_ids([letter]) == [str(unusable.metadata.id)]
    assert header_values(letter.headers(), "dlt_original_offset") == ["0"]


def test_a_wrong_password_keeps_rows_pending_says_why_and_the_relay_waits(
    topic, kafka_stack, secured_stack, settings, caplog, monkeypatch
):
    written = write_events(topic, 5)
    payloads = json.dumps([row.payload for row in OutboxEvent.objects.all()])
    secured_stack.use(settings, password=WRONG_PASSWORD)
    monkeypatch.setattr(kafka_errors, "_operator_error_logged_at", {})  # log the refusal in this test too
    caplog.set_level(logging.INFO)

    lease = 3.0
    relay = Relay(RelayOptions(lanes=[topic], poll_interval=0.2, lease_seconds=lease, backoff=(0.2, 1.0)))
    worker = run_in_thread(relay)
    try:
        refused = "Kafka refused this client: _AUTHENTICATION"
        assert wait_for(lambda: refused in caplog.text, timeout=30), caplog.text
        time.sleep(3 * lease)  # failing for longer than a lease: the relay gives the lane up, and waits
        assert worker.is_alive(), "the relay exited"
        assert OutboxEvent.objects.filter(status=OutboxEvent.STATUS.pending).count() == 5
        assert relay.sent_total == 0 and relay.dead_total == 0
    finally:
        relay.stop()
        worker.join(timeout=30)
    assert not worker.is_alive()
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith(refused)]
    assert "SASL authentication error" in line and "SCRAM-SHA-512" in line and "EVENT_BUS_OUTBOX_KAFKA_CONFIG" in line

    status = manage("outbox_status", "--json")
    assert json.loads(status.stdout)["lanes"][0]["pending"] == 5
    for text in (caplog.text, status.stdout, status.stderr, *OutboxEvent.objects.values_list("last_error", flat=True)):
        assert WRONG_PASSWORD not in (text or "") and secured_stack.password not in (text or "")
    pii = [value for row in json.loads(payloads) for value in row["enrollment"]["user"]["pii"].values()]
    assert pii and not [value for value in pii if value in caplog.text]

    # The configuration fixed, a relay publishes every row: nothing was lost.
    secured_stack.use(settings)
    assert drain(topic).sent_total == 5
    assert sorted(ce_ids(kafka_stack.read_all(topic, expected=5))) == sorted(str(m.id) for m in written)


def test_the_registry_client_needs_the_ca_from_its_settings(secured_stack, settings):
    secured_stack.use(settings)
    assert isinstance(schema_registry_client().get_subjects(), list)
    settings.EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_CONFIG = {}  # the system's CAs only: the stack's CA is not one
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):  # httpx's ConnectError
        schema_registry_client().get_subjects()
