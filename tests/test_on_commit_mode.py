"""The on-commit mode: published after commit, never for a rollback; its failures are logged, never raised."""

import logging

import pytest
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
from django.db import transaction

from edx_event_bus_outbox.kafka.headers import header_values
from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.outbox import on_commit
from tests.factories import (
    CourseDataFactory,
    CourseEnrollmentDataFactory,
    enrollment_event,
)
from tests.test_producer import Boom, caller_rows, caller_writes, emit, route

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def handed_to_kafka(monkeypatch):
    """The event ids ``on_commit.publish`` was called with (it still publishes)."""
    calls = []
    real = on_commit.publish

    def recording(**kwargs):
        calls.append(str(kwargs["metadata"].id))
        real(**kwargs)

    monkeypatch.setattr(on_commit, "publish", recording)
    return calls


def event_ids(signal):
    """The ids of the events ``signal`` sends from now on (a receiver; disconnect it with ``signal.disconnect``)."""
    ids = []
    signal.connect(lambda **kw: ids.append(str(kw["metadata"].id)), weak=False, dispatch_uid="ids")
    return ids


def no_payload_in(text, data):
    pii = data["enrollment"].user.pii
    return not any(value in text for value in (pii.username, pii.email, pii.name))


@pytest.mark.kafka
def test_on_commit_publishes_after_commit_and_never_for_a_rollback(bus, topic, kafka_stack, handed_to_kafka):
    signal, key_field, rolled_back = enrollment_event()
    _, _, committed = enrollment_event()
    route(bus, signal, key_field, topics=(topic,), mode="on-commit")
    ids = event_ids(signal)
    try:
        with pytest.raises(Boom):
            with transaction.atomic():
                caller_writes("rolled-back")
                emit(signal, rolled_back)
                raise Boom()
        with transaction.atomic():
            caller_writes("committed")
            emit(signal, committed)
            on_commit.flush(10)  # anything already handed to librdkafka would be delivered now
            assert handed_to_kafka == [], "handed to Kafka before the commit"
            assert kafka_stack.read_all(topic) == [], "on Kafka before the commit"
    finally:
        signal.disconnect(dispatch_uid="ids")
    assert handed_to_kafka == [ids[1]]
    assert on_commit.flush(30) == 0

    messages = kafka_stack.read_all(topic, expected=1)
    assert [header_values(m.headers(), "ce_id") for m in messages] == [[ids[1]]]
    assert caller_rows() == ["committed"]
    assert OutboxEvent.objects.count() == 0


def test_an_event_that_cannot_be_encoded_is_logged_and_the_caller_commits(bus, settings, caplog):
    """No registry to register the schema with: the commit still succeeds, the loss is logged without payload."""
    settings.EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL = "http://127.0.0.1:1"  # nothing listens there
    settings.EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_TIMEOUT_SECONDS = 2
    signal, key_field, data = enrollment_event()
    route(bus, signal, key_field, mode="on-commit")
    ids = event_ids(signal)
    try:
        with caplog.at_level(logging.ERROR), transaction.atomic():
            caller_writes()
            emit(signal, data)
    finally:
        signal.disconnect(dispatch_uid="ids")

    assert caller_rows() == ["caller"]
    assert OutboxEvent.objects.count() == 0
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("on-commit event not published")]
    assert f"event_id={ids[0]} type={signal.event_type} topic=topic-a" in line
    assert no_payload_in(caplog.text, data)


@pytest.mark.kafka
def test_an_event_the_broker_refuses_is_logged_and_the_caller_commits(bus, topic, kafka_stack, caplog):
    """The broker refuses the message (too large for the topic): the delivery report is logged, nothing raised."""
    resource = ConfigResource(
        "topic",
        topic,
        incremental_configs=[ConfigEntry("max.message.bytes", "1500", incremental_operation=AlterConfigOpType.SET)],
    )
    for future in kafka_stack.admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)
    signal, key_field, _ = enrollment_event()
    data = {"enrollment": CourseEnrollmentDataFactory(course=CourseDataFactory(display_name="x" * 4000))}
    route(bus, signal, key_field, topics=(topic,), mode="on-commit")
    ids = event_ids(signal)
    try:
        with caplog.at_level(logging.ERROR):
            with transaction.atomic():
                caller_writes()
                emit(signal, data)
            assert on_commit.flush(30) == 0  # the delivery report has come back
    finally:
        signal.disconnect(dispatch_uid="ids")

    assert caller_rows() == ["caller"]
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("on-commit event not delivered")]
    assert f"event_id={ids[0]} type={signal.event_type} topic={topic}" in line and "MSG_SIZE_TOO_LARGE" in line
    assert no_payload_in(caplog.text, data)
    assert kafka_stack.read_all(topic) == []
