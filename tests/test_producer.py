"""The outbox write path, on whichever database OUTBOX_TEST_DB selects."""

import logging

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from openedx_events.data import EventsMetadata
from openedx_events.event_bus.avro.deserializer import AvroSignalDeserializer

from edx_event_bus_outbox import create_producer
from edx_event_bus_outbox.exceptions import EventValidationError, OutboxConfigurationError
from edx_event_bus_outbox.kafka.schemas import signal_serializer
from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.outbox.modes import validate_producer_config
from tests.factories import CourseEnrollmentDataFactory, enrollment_event, sample_events

pytestmark = pytest.mark.django_db(transaction=True)


class Boom(Exception):
    pass


def route(bus, signal, key_field, topics=("topic-a",), **options):
    bus(signal.event_type, {t: {"event_key_field": key_field, "enabled": True, **options} for t in topics})


def emit(signal, data):
    signal.send_event(**data)


def caller_writes(name="caller"):
    """The caller's own data, written in the caller's transaction next to the event."""
    return User.objects.create(username=name)


def caller_rows():
    return sorted(User.objects.values_list("username", flat=True))


@pytest.mark.parametrize("index", range(len(sample_events())))
def test_commit_writes_exactly_one_row_with_the_event(bus, index):
    signal, key_field, data = sample_events()[index]
    route(bus, signal, key_field)
    with transaction.atomic():
        caller_writes()
        signal.send_event(**data)

    assert caller_rows() == ["caller"]
    row = OutboxEvent.objects.get()
    expected_payload = signal_serializer(signal).to_dict(data)
    assert row.event_type == signal.event_type
    assert row.topic == "topic-a"
    assert row.event_key_field == key_field
    assert row.payload == expected_payload
    expected_key = expected_payload
    for part in key_field.split("."):
        expected_key = expected_key[part]
    assert row.event_key == expected_key
    assert row.status == OutboxEvent.STATUS.pending
    assert row.attempts == 0 and row.sent_at is None and row.offset is None


@pytest.mark.parametrize("index", range(len(sample_events())))
def test_row_round_trips_to_the_same_event_data_and_metadata(bus, index):
    signal, key_field, data = sample_events()[index]
    route(bus, signal, key_field)
    received = []
    signal.connect(lambda **kwargs: received.append(kwargs["metadata"]), weak=False, dispatch_uid="grab")
    try:
        signal.send_event(**data)
    finally:
        signal.disconnect(dispatch_uid="grab")

    row = OutboxEvent.objects.get()
    assert AvroSignalDeserializer(signal).from_dict(row.payload) == data
    assert row.metadata == received[0]


def test_autocommit_without_a_transaction_writes_the_row(bus):
    signal, key_field, data = enrollment_event()
    route(bus, signal, key_field)
    emit(signal, data)
    assert OutboxEvent.objects.count() == 1


def test_outer_rollback_writes_nothing(bus):
    signal, key_field, data = enrollment_event()
    route(bus, signal, key_field)
    with transaction.atomic():
        caller_writes()
        emit(signal, data)
        assert OutboxEvent.objects.count() == 1  # written, in the caller's transaction
        transaction.set_rollback(True)
    assert caller_rows() == [] and OutboxEvent.objects.count() == 0


def test_exception_inside_atomic_writes_nothing(bus):
    signal, key_field, data = enrollment_event()
    route(bus, signal, key_field)
    with pytest.raises(Boom):
        with transaction.atomic():
            caller_writes()
            emit(signal, data)
            assert OutboxEvent.objects.count() == 1  # written, in the caller's transaction
            raise Boom()
    assert caller_rows() == [] and OutboxEvent.objects.count() == 0


def test_rolled_back_savepoint_drops_only_its_event(bus):
    signal, key_field, data = enrollment_event()
    route(bus, signal, key_field)
    kept = CourseEnrollmentDataFactory()
    with transaction.atomic():
        caller_writes("outer")
        emit(signal, {"enrollment": kept})
        with pytest.raises(Boom):
            with transaction.atomic():
                caller_writes("savepoint")
                emit(signal, data)
                assert OutboxEvent.objects.count() == 2
                raise Boom()
    assert caller_rows() == ["outer"]
    row = OutboxEvent.objects.get()
    assert row.payload["enrollment"]["user"]["id"] == kept.user.id


def test_each_enabled_topic_gets_a_row_and_a_disabled_topic_none(bus):
    signal, key_field, data = enrollment_event()
    bus(
        signal.event_type,
        {
            "topic-a": {"event_key_field": key_field, "enabled": True},
            "topic-b": {"event_key_field": key_field, "enabled": True},
            "topic-off": {"event_key_field": key_field, "enabled": False},
        },
    )
    with transaction.atomic():
        emit(signal, data)
    rows = list(OutboxEvent.objects.order_by("topic"))
    assert [r.topic for r in rows] == ["topic-a", "topic-b"]
    assert rows[0].event_id == rows[1].event_id  # one event, published to two topics


def test_events_from_the_bus_are_not_written_back(bus):
    signal, key_field, data = enrollment_event()
    route(bus, signal, key_field)
    from_bus = EventsMetadata(event_type=signal.event_type)
    signal.send_event_with_custom_metadata(from_bus, **data)
    assert OutboxEvent.objects.count() == 0
    emit(signal, data)  # the same data, raised here: written
    assert OutboxEvent.objects.exclude(event_id=from_bus.id).count() == 1


def _send_directly(signal, key_field, data, topic="topic-a"):
    create_producer().send(
        signal=signal,
        topic=topic,
        event_key_field=key_field,
        event_data=data,
        event_metadata=EventsMetadata(event_type=signal.event_type),
    )


def _wrong_type():
    signal, key_field, data = enrollment_event()
    data["enrollment"] = CourseEnrollmentDataFactory(is_active="yes")
    return signal, key_field, data, "enrollment.is_active"


def _missing_field():
    signal, key_field, data = enrollment_event()
    return signal, key_field, {}, "enrollment"


def _key_path_not_found():
    signal, _, data = enrollment_event()
    return signal, "enrollment.course.no_such_field", data, "enrollment.course.no_such_field"


def _none_in_string():
    signal, key_field, data = enrollment_event()
    data["enrollment"] = CourseEnrollmentDataFactory(mode=None)
    return signal, key_field, data, "enrollment.mode"


def _none_in_custom_type():
    signal, key_field, data = enrollment_event()
    data["enrollment"] = CourseEnrollmentDataFactory(creation_date=None)
    return signal, key_field, data, "enrollment.creation_date"


@pytest.mark.parametrize(
    "case", [_wrong_type, _missing_field, _key_path_not_found, _none_in_string, _none_in_custom_type]
)
def test_invalid_event_raises_a_typed_error_naming_signal_topic_and_field(case):
    signal, key_field, data, field = case()
    with pytest.raises(EventValidationError) as raised:
        with transaction.atomic():
            _send_directly(signal, key_field, data, topic="the-topic")
    message = str(raised.value)
    assert signal.event_type in message and "the-topic" in message and repr(field) in message
    assert raised.value.field == field
    assert OutboxEvent.objects.count() == 0


def test_a_send_error_is_logged_and_the_caller_commits_by_default(bus, caplog):
    signal, key_field, data = enrollment_event()
    route(bus, signal, "enrollment.no_such_key")
    with caplog.at_level(logging.ERROR), transaction.atomic():
        caller_writes()
        emit(signal, data)
    assert caller_rows() == ["caller"], "the caller's transaction committed"
    assert OutboxEvent.objects.count() == 0
    assert "enrollment.no_such_key" in caplog.text


def test_propagate_send_errors_rolls_the_caller_back(bus, settings):
    from django.apps import apps

    signal, key_field, data = enrollment_event()
    route(bus, signal, "enrollment.no_such_key")
    settings.EVENT_BUS_OUTBOX_PROPAGATE_SEND_ERRORS = True
    apps.get_app_config("edx_event_bus_outbox").ready()
    try:
        with pytest.raises(EventValidationError):
            with transaction.atomic():
                caller_writes()
                emit(signal, {"enrollment": CourseEnrollmentDataFactory()})
    finally:
        signal._allow_send_event_failure = False
    assert caller_rows() == [], "the caller's transaction rolled back"
    assert OutboxEvent.objects.count() == 0


@pytest.mark.parametrize("where", ["default", "per-topic"])
def test_unknown_mode_fails_at_startup(settings, where):
    if where == "default":
        settings.EVENT_BUS_PRODUCER_MODE = "fire-and-forget"
    else:
        settings.EVENT_BUS_PRODUCER_CONFIG = {
            "org.openedx.learning.course.enrollment.created.v1": {
                "topic-a": {"event_key_field": "enrollment.course.course_key", "enabled": True, "mode": "later"}
            }
        }
    with pytest.raises(OutboxConfigurationError, match="must be one of 'outbox', 'on-commit'"):
        validate_producer_config()
