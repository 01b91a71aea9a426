"""
The write path never breaks the caller (ADR 4), on whichever database OUTBOX_TEST_DB selects.

Every test here plays a caller that writes its OWN row (an auth ``Group``) and then emits an
event through openedx-events' real ``send_event()``, which calls our ``send()`` through
``send_robust()``, exactly as in production. Whatever goes wrong with the event, the outcome
must be the same on PostgreSQL, MariaDB and SQLite: the caller's row is committed, the event is
not stored, and an ERROR log names the event but never the offending value.
"""

import json
import logging
import uuid
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group
from django.db import DatabaseError, connection, transaction
from django.db.transaction import TransactionManagementError
from openedx_events.apps import general_signal_handler
from openedx_events.data import EventsMetadata
from openedx_events.learning.data import PersistentCourseGradeData
from openedx_events.learning.signals import PERSISTENT_GRADE_SUMMARY_CHANGED

from edx_event_bus_outbox import create_producer
from edx_event_bus_outbox.exceptions import DuplicateEventError, EventValidationError, OutboxWriteError
from edx_event_bus_outbox.models import OutboxEvent
from tests.factories import CourseDataFactory, CourseEnrollmentDataFactory, UserDataFactory, UserPersonalDataFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("routed")]

TOPIC = "topic-w"
KEY_FIELD = "enrollment.course.course_key"
SECRET = "alice.secret@example.com"  # stands for PII: must never appear in a message or a log


@pytest.fixture
def routed(settings):
    """Route the enrollment and grade signals to TOPIC, as openedx-events' ready() would."""
    from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

    signals = {COURSE_ENROLLMENT_CREATED: KEY_FIELD, PERSISTENT_GRADE_SUMMARY_CHANGED: "grade.course.course_key"}
    settings.EVENT_BUS_PRODUCER_CONFIG = {
        signal.event_type: {TOPIC: {"event_key_field": key, "enabled": True}} for signal, key in signals.items()
    }
    for signal in signals:
        signal.connect(general_signal_handler)
    yield
    for signal in signals:
        signal.disconnect(general_signal_handler)


def enrollment(**pii):
    return {"enrollment": CourseEnrollmentDataFactory(user=UserDataFactory(pii=UserPersonalDataFactory(**pii)))}


def grade(percent):
    return {
        "grade": PersistentCourseGradeData(
            user_id=7,
            course=CourseDataFactory(),
            course_edited_timestamp=datetime(2026, 1, 1, tzinfo=UTC),
            course_version="v1",
            grading_policy_hash="h",
            percent_grade=percent,
            letter_grade="A",
            passed_timestamp=datetime(2026, 1, 2, tzinfo=UTC),
        )
    }


def emit(data, signal=None, metadata=None):
    """``send_event()`` as an application calls it (send_robust), optionally with fixed metadata."""
    from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

    signal = signal or COURSE_ENROLLMENT_CREATED
    if metadata is None:
        return signal.send_event(**data)
    # send_event() always makes fresh metadata; this is the call it makes, with ours, to re-send one event.
    return signal._send_event_with_metadata(metadata=metadata, **data)


def caller_transaction(data, signal=None, metadata=None, name="caller-row"):
    """The caller's unit of work: its own row, then the event as the LAST thing before COMMIT."""
    with transaction.atomic():
        Group.objects.create(name=name)
        emit(data, signal, metadata)


def assert_caller_row_kept_and_event_refused(caplog, *expected_in_log):
    assert list(Group.objects.values_list("name", flat=True)) == ["caller-row"], "the caller's own data was lost"
    assert not OutboxEvent.objects.filter(topic=TOPIC).exists(), "an event was stored that must not be"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors, "nothing was logged at ERROR"
    for text in expected_in_log:
        assert text in caplog.text
    assert SECRET not in caplog.text


UNSTORABLE = {
    "NUL in a string": (lambda: enrollment(name=f"{SECRET}\x00"), "enrollment.user.pii.name"),
    "lone surrogate": (lambda: enrollment(email=f"{SECRET}\ud800"), "enrollment.user.pii.email"),
}


@pytest.mark.parametrize("case", sorted(UNSTORABLE))
def test_content_the_database_cannot_store_keeps_the_callers_data(caplog, case):
    make_data, field = UNSTORABLE[case]
    with caplog.at_level(logging.INFO):
        caller_transaction(make_data())
    assert_caller_row_kept_and_event_refused(caplog, "EventValidationError", repr(field), TOPIC)


def test_not_a_number_keeps_the_callers_data(caplog):
    with caplog.at_level(logging.INFO):
        caller_transaction(grade(float("nan")), signal=PERSISTENT_GRADE_SUMMARY_CHANGED)
    assert_caller_row_kept_and_event_refused(caplog, "EventValidationError", "'grade.percent_grade'")


def test_an_event_over_the_size_limit_keeps_the_callers_data(caplog, settings):
    settings.EVENT_BUS_OUTBOX_MAX_EVENT_BYTES = 4000
    with caplog.at_level(logging.INFO):
        caller_transaction(enrollment(name=SECRET + "x" * 5000))
    assert_caller_row_kept_and_event_refused(caplog, "EventValidationError", "EVENT_BUS_OUTBOX_MAX_EVENT_BYTES")


def test_the_default_size_limit_refuses_an_event_kafka_would_refuse(caplog):
    with caplog.at_level(logging.INFO):
        caller_transaction(enrollment(name=SECRET + "x" * 1_000_000))
    assert_caller_row_kept_and_event_refused(caplog, "EventValidationError", "1000000")


def test_a_duplicate_event_id_keeps_the_callers_data_and_the_first_event(caplog):
    from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

    metadata = EventsMetadata(event_type=COURSE_ENROLLMENT_CREATED.event_type)
    emit(enrollment(), metadata=metadata)
    first = OutboxEvent.objects.get()
    with caplog.at_level(logging.INFO):
        caller_transaction(enrollment(name=SECRET), metadata=metadata)
    assert list(Group.objects.values_list("name", flat=True)) == ["caller-row"]
    assert list(OutboxEvent.objects.values_list("id", flat=True)) == [first.id]
    assert "DuplicateEventError" in caplog.text and str(metadata.id) in caplog.text
    assert SECRET not in caplog.text


@pytest.fixture
def failing_insert():
    """A real database error on the outbox INSERT: a trigger that raises for one topic."""
    table = OutboxEvent._meta.db_table
    statements = {
        "postgresql": (
            [
                "CREATE FUNCTION outbox_test_fail() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'injected failure'; END; $$",
                f"CREATE TRIGGER outbox_test_fail BEFORE INSERT ON {table} FOR EACH ROW "
                f"WHEN (NEW.topic = '{TOPIC}') EXECUTE FUNCTION outbox_test_fail()",
            ],
            [f"DROP TRIGGER outbox_test_fail ON {table}", "DROP FUNCTION outbox_test_fail()"],
        ),
        "mysql": (
            [
                f"CREATE TRIGGER outbox_test_fail BEFORE INSERT ON {table} FOR EACH ROW "
                f"BEGIN IF NEW.topic = '{TOPIC}' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected failure'; "
                "END IF; END",
            ],
            ["DROP TRIGGER outbox_test_fail"],
        ),
        "sqlite": (
            [
                f"CREATE TRIGGER outbox_test_fail BEFORE INSERT ON {table} WHEN NEW.topic = '{TOPIC}' "
                "BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            ],
            ["DROP TRIGGER outbox_test_fail"],
        ),
    }
    create, drop = statements[connection.vendor]
    with connection.cursor() as cursor:
        for sql in create:
            cursor.execute(sql)
    yield
    with connection.cursor() as cursor:
        for sql in drop:
            cursor.execute(sql)


@pytest.mark.usefixtures("failing_insert")
def test_a_database_error_on_the_insert_keeps_the_callers_data(caplog):
    with caplog.at_level(logging.INFO):
        caller_transaction(enrollment(name=SECRET))
    assert_caller_row_kept_and_event_refused(caplog, "OutboxWriteError", TOPIC)


@pytest.mark.usefixtures("failing_insert")
def test_the_caller_can_keep_working_after_a_refused_insert():
    with transaction.atomic():
        Group.objects.create(name="caller-row")
        emit(enrollment())
        Group.objects.create(name="after-the-event")
    assert set(Group.objects.values_list("name", flat=True)) == {"caller-row", "after-the-event"}


@pytest.mark.usefixtures("failing_insert")
def test_a_database_error_in_autocommit_keeps_the_callers_data(caplog):
    with caplog.at_level(logging.INFO):
        Group.objects.create(name="caller-row")
        emit(enrollment(name=SECRET))
    assert_caller_row_kept_and_event_refused(caplog, "OutboxWriteError", TOPIC)


@pytest.mark.usefixtures("failing_insert")
def test_with_propagation_a_database_error_rolls_the_caller_back_loudly():
    from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

    COURSE_ENROLLMENT_CREATED.allow_send_event_failure()
    try:
        with pytest.raises(OutboxWriteError):
            caller_transaction(enrollment())
    finally:
        COURSE_ENROLLMENT_CREATED._allow_send_event_failure = False
    assert not Group.objects.exists() and not OutboxEvent.objects.exists()


@pytest.mark.sqlite_only  # RAISE(ROLLBACK) is SQLite's
def test_when_the_database_rolls_the_transaction_back_the_rest_of_the_block_is_refused(caplog):
    """SQLite's RAISE(ROLLBACK) ends the whole transaction, as an InnoDB deadlock does on MariaDB."""
    table = OutboxEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TRIGGER outbox_test_lost BEFORE INSERT ON {table} WHEN NEW.topic = '{TOPIC}' "
            "BEGIN SELECT RAISE(ROLLBACK, 'injected rollback'); END"
        )
    try:
        with caplog.at_level(logging.INFO), pytest.raises(TransactionManagementError):
            with transaction.atomic():
                Group.objects.create(name="caller-row")
                emit(enrollment(name=SECRET))
                Group.objects.create(name="would-commit-alone")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER outbox_test_lost")
    assert not Group.objects.exists() and not OutboxEvent.objects.exists()
    assert "TransactionLostError" in caplog.text and SECRET not in caplog.text


@pytest.mark.postgres_only
def test_a_connection_lost_during_the_insert_fails_the_callers_commit_loudly(caplog):
    """The INSERT's trigger kills its own backend: the caller's COMMIT must raise, not pretend."""
    table = OutboxEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION outbox_test_die() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END; $$"
        )
        cursor.execute(
            f"CREATE TRIGGER outbox_test_die BEFORE INSERT ON {table} FOR EACH ROW "
            f"WHEN (NEW.topic = '{TOPIC}') EXECUTE FUNCTION outbox_test_die()"
        )
    try:
        with caplog.at_level(logging.INFO), pytest.raises(DatabaseError):
            caller_transaction(enrollment(name=SECRET))
    finally:
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER outbox_test_die ON {table}")
            cursor.execute("DROP FUNCTION outbox_test_die()")
    assert not Group.objects.exists() and not OutboxEvent.objects.exists()
    assert "TransactionLostError" in caplog.text and SECRET not in caplog.text


def test_the_event_commits_with_the_callers_data():
    caller_transaction(enrollment())
    assert Group.objects.count() == 1 and OutboxEvent.objects.count() == 1


def test_every_event_gets_the_relay_columns_defaults_and_its_own_created_time():
    """The constant defaults are prepared once per database; ``created`` (a callable default) never is."""
    from django.utils import timezone

    caller_transaction(enrollment(), name="first")
    second_sent_after = timezone.now()
    caller_transaction(enrollment(), name="second")
    first, second = OutboxEvent.objects.order_by("id")
    assert second.created >= second_sent_after > first.created
    for row in (first, second):
        assert (row.status, row.attempts, row.last_error) == (OutboxEvent.STATUS.pending, 0, "")
        assert (row.next_attempt_at, row.failing_since, row.sent_at, row.partition, row.offset) == (None,) * 5


def test_the_insert_stores_each_column_exactly_as_the_orm_stores_it():
    """``send()``'s own INSERT skips the ORM (and, for str and int values, ``get_db_prep_save``)."""
    caller_transaction(enrollment(name="Zoë 终"))
    sent = OutboxEvent.objects.get()
    copied = OutboxEvent.objects.create(
        **{f.attname: getattr(sent, f.attname) for f in OutboxEvent._meta.concrete_fields if not f.primary_key}
        | {"event_id": uuid.uuid4()}
    )
    columns = [f.column for f in OutboxEvent._meta.concrete_fields if f.column not in ("id", "event_id")]
    table = OutboxEvent._meta.db_table
    quoted = ", ".join(connection.ops.quote_name(column) for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quoted} FROM {table} WHERE id IN (%s, %s) ORDER BY id", [sent.id, copied.id])
        ours, orms = cursor.fetchall()
    # The JSON columns hold the same data; as text (MariaDB, SQLite) ours is the compact form.
    ours, orms = (
        [
            json.loads(v) if c in ("payload", "event_key") and isinstance(v, str) else v
            for c, v in zip(columns, row, strict=True)
        ]
        for row in (ours, orms)
    )
    assert dict(zip(columns, ours, strict=True)) == dict(zip(columns, orms, strict=True))


def test_text_that_only_looks_like_a_bad_escape_is_stored_as_it_is():
    """Emoji (a surrogate pair in JSON) and a literal backslash-u pass the quick check's suspicion."""
    name = "Zoë 😀 \\ud800 \\u0000 终"
    caller_transaction(enrollment(name=name))
    assert OutboxEvent.objects.get().payload["enrollment"]["user"]["pii"]["name"] == name


def test_a_large_event_under_the_limit_is_measured_exactly_and_stored():
    """400,000 characters: the JSON text alone cannot prove it fits, so it is Avro-encoded and measured."""
    caller_transaction(enrollment(name="x" * 400_000))
    assert len(OutboxEvent.objects.get().payload["enrollment"]["user"]["pii"]["name"]) == 400_000


def test_a_topic_longer_than_its_column_is_refused_before_the_insert(settings, caplog):
    from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

    long_topic = "t" * 300
    settings.EVENT_BUS_PRODUCER_CONFIG = {
        COURSE_ENROLLMENT_CREATED.event_type: {long_topic: {"event_key_field": KEY_FIELD, "enabled": True}}
    }
    with caplog.at_level(logging.INFO):
        caller_transaction(enrollment())
    assert list(Group.objects.values_list("name", flat=True)) == ["caller-row"]
    assert not OutboxEvent.objects.exists()
    assert "EventValidationError" in caplog.text and "field 'topic' is 300 characters long" in caplog.text


def test_the_size_limit_must_be_positive(settings):
    from edx_event_bus_outbox import conf
    from edx_event_bus_outbox.exceptions import OutboxConfigurationError

    assert conf.max_event_bytes() == 1_000_000
    settings.EVENT_BUS_OUTBOX_MAX_EVENT_BYTES = 0
    with pytest.raises(OutboxConfigurationError):
        conf.max_event_bytes()


def test_a_successful_send_is_one_statement():
    """No extra round trip on the normal path: one ``execute`` on the connection per event."""
    from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

    producer = create_producer()
    statements = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with transaction.atomic():
        Group.objects.create(name="caller-row")
        for _ in range(3):
            data = enrollment()
            with connection.execute_wrapper(count):
                producer.send(
                    signal=COURSE_ENROLLMENT_CREATED,
                    topic=TOPIC,
                    event_key_field=KEY_FIELD,
                    event_data=data,
                    event_metadata=EventsMetadata(event_type=COURSE_ENROLLMENT_CREATED.event_type),
                )
    assert len(statements) == 3, statements
    assert OutboxEvent.objects.count() == 3


# ---------------------------------------------------------------- messages name the field, never the value


def _direct(signal, key_field, data, metadata=None):
    create_producer().send(
        signal=signal,
        topic=TOPIC,
        event_key_field=key_field,
        event_data=data,
        event_metadata=metadata or EventsMetadata(event_type=signal.event_type),
    )


def _wrong_type():
    from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

    return (
        COURSE_ENROLLMENT_CREATED,
        KEY_FIELD,
        {"enrollment": CourseEnrollmentDataFactory(is_active=SECRET)},
        "enrollment.is_active",
    )


def _nul_in_the_key():
    from openedx_events.learning.signals import SESSION_LOGIN_COMPLETED

    return (
        SESSION_LOGIN_COMPLETED,
        "user.pii.username",
        {"user": UserDataFactory(pii=UserPersonalDataFactory(username=SECRET + "\x00", email="e@example.org"))},
        "user.pii.username",
    )


def _custom_type_given_a_string():
    from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

    return (
        COURSE_ENROLLMENT_CREATED,
        KEY_FIELD,
        {"enrollment": CourseEnrollmentDataFactory(creation_date=SECRET)},
        "enrollment.creation_date",
    )


def _nul():
    from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

    return COURSE_ENROLLMENT_CREATED, KEY_FIELD, enrollment(email=SECRET + "\x00"), "enrollment.user.pii.email"


@pytest.mark.parametrize("case", [_wrong_type, _nul_in_the_key, _custom_type_given_a_string, _nul])
def test_validation_messages_never_quote_the_value(case, caplog):
    signal, key_field, data, field = case()
    with caplog.at_level(logging.DEBUG), pytest.raises(EventValidationError) as raised:
        _direct(signal, key_field, data)
    message = str(raised.value)
    assert signal.event_type in message and TOPIC in message and repr(field) in message
    assert SECRET not in message and SECRET not in repr(raised.value.problem)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__, "a chained error could quote it"
    assert SECRET not in caplog.text
    assert not OutboxEvent.objects.exists()


def test_errors_are_typed():
    assert issubclass(DuplicateEventError, OutboxWriteError)
    event_id = uuid.uuid4()
    error = OutboxWriteError(event_id=event_id, event_type="t.v1", topic="x", cause="IntegrityError")
    assert str(event_id) in str(error) and "t.v1" in str(error)
