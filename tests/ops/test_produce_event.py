"""
``manage.py produce_event``: exit codes, output, and what reaches the outbox, run as a real
child process on this test's database, as an operator would run it.
"""

import json
import os
import re
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from edx_event_bus_outbox.models import OutboxEvent
from tests.outbox_tools import ROOT, manage

pytestmark = pytest.mark.django_db(transaction=True)

LOGIN = "openedx_events.learning.signals.SESSION_LOGIN_COMPLETED"
LOGIN_DATA = {
    "user": {"id": 123, "is_active": True, "pii": {"username": "foobob", "email": "bob@foo.example", "name": "Bob Foo"}}
}
ENROLLMENT = "openedx_events.learning.signals.COURSE_ENROLLMENT_CREATED"
ENROLLMENT_DATA = {
    "enrollment": {
        "user": LOGIN_DATA["user"],
        "course": {
            "course_key": "course-v1:edX+DemoX+2026",
            "display_name": "Demo",
            "start": "2026-01-05T09:30:00+00:00",
        },
        "mode": "audit",
        "is_active": True,
        "creation_date": "2026-02-01T12:00:00+00:00",
    }
}
SUCCESS = re.compile(r"Event (?P<event_id>[0-9a-f-]{36}) \((?P<type>[^)]+)\) written to the outbox as row (?P<row>\d+)")


def produce(signal=LOGIN, topic="user-login", key_field="user.pii.username", data=None, child_process=True):
    """``manage.py produce_event``: in a child process, or (``child_process=False``) as one in this process."""
    data = json.dumps(LOGIN_DATA if data is None else data) if not isinstance(data, str) else data
    args = ["produce_event", "--signal", signal, "--topic", topic, "--key-field", key_field, "--data", data]
    if not child_process:
        return manage(*args)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "OUTBOX_TEST_DB_NAME": connection.settings_dict["NAME"],
        },
    )


def test_an_event_is_written_to_the_outbox_and_reported():
    result = produce()

    assert result.returncode == 0, result.stderr
    reported = SUCCESS.search(result.stdout)
    assert reported, result.stdout
    row = OutboxEvent.objects.get()
    assert (str(row.id), str(row.event_id)) == (reported["row"], reported["event_id"])
    assert (row.event_type, row.topic, row.status) == (
        "org.openedx.learning.auth.session.login.completed.v1",
        "user-login",
        "pending",
    )
    assert (row.event_key_field, row.event_key) == ("user.pii.username", "foobob")
    assert row.payload == LOGIN_DATA


def test_typed_values_are_parsed_from_their_json_form():
    result = produce(ENROLLMENT, "enrollments", "enrollment.course.course_key", ENROLLMENT_DATA)

    assert result.returncode == 0, result.stderr
    row = OutboxEvent.objects.get()
    assert row.event_key == "course-v1:edX+DemoX+2026"
    # The optional fields left out of --data were filled with their defaults, as send_event() would.
    assert row.payload["enrollment"]["course"]["end"] is None
    assert row.payload["enrollment"]["created_by"] is None
    assert row.payload["enrollment"]["course"]["start"] == "2026-01-05T09:30:00+00:00"


def with_user(**changes):
    return {"user": {**LOGIN_DATA["user"], **changes}}


@pytest.mark.parametrize(
    "arguments, message",
    [
        pytest.param(
            {"signal": "openedx_events.learning.signals.NO_SUCH_SIGNAL"}, "cannot be imported", id="unknown-signal"
        ),
        pytest.param({"signal": "nodots"}, "cannot be imported", id="not-a-dotted-path"),
        pytest.param({"signal": "json.dumps"}, "is a function, not an OpenEdxPublicSignal", id="not-a-signal"),
        pytest.param({"data": '{"user": '}, "--data is not valid JSON", id="invalid-json"),
        pytest.param({"data": [LOGIN_DATA]}, "must be a JSON object", id="json-not-an-object"),
        pytest.param(
            {"data": {"usr": LOGIN_DATA["user"]}},
            "must have exactly the keys ['user']; it has ['usr']",
            id="wrong-top-level-keys",
        ),
        pytest.param(
            {"data": with_user(id="abc")},
            "field 'user.id' of org.openedx.learning.auth.session.login.completed.v1 is a str, expected Avro long",
            id="wrong-type",
        ),
        pytest.param(
            {"data": {"user": {"is_active": True, "pii": LOGIN_DATA["user"]["pii"]}}},
            "missing 1 required positional argument: 'id'",
            id="missing-field",
        ),
        pytest.param(
            {
                "signal": ENROLLMENT,
                "key_field": "enrollment.course.course_key",
                "data": {"enrollment": {**ENROLLMENT_DATA["enrollment"], "course": {"course_key": "not a course key"}}},
            },
            "--data does not match org.openedx.learning.course.enrollment.created.v1: InvalidKeyError",
            id="malformed-course-key",
        ),
        pytest.param({"key_field": "user.pii.nickname"}, "field 'user.pii.nickname'", id="key-path-not-found"),
    ],
)
def test_bad_input_fails_with_a_clear_message_and_writes_nothing(arguments, message):
    # In this process (a child process costs a second each); the first case also runs as a real one.
    result = produce(**arguments, child_process=False)

    assert result.returncode == 1, result.stdout
    assert "CommandError: " in result.stderr and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not OutboxEvent.objects.exists()


def test_bad_input_in_a_real_child_process_exits_1_without_a_traceback():
    result = produce(signal="openedx_events.learning.signals.NO_SUCH_SIGNAL")

    assert result.returncode == 1, result.stdout
    assert "CommandError: " in result.stderr and "cannot be imported" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not OutboxEvent.objects.exists()


@pytest.mark.kafka
@override_settings(EVENT_BUS_PRODUCER_MODE="on-commit")
def test_in_on_commit_mode_the_event_is_published_after_commit_without_a_row(kafka_stack, topic):
    out = StringIO()
    call_command(
        "produce_event",
        "--signal",
        LOGIN,
        "--topic",
        topic,
        "--key-field",
        "user.pii.username",
        "--data",
        json.dumps(LOGIN_DATA),
        stdout=out,
    )

    event_id = re.search(r"Event (\S+) ", out.getvalue())[1]
    assert "on-commit mode, without an outbox row" in out.getvalue()
    assert not OutboxEvent.objects.exists()
    [message] = kafka_stack.read_all(topic, expected=1)
    assert dict(message.headers())["ce_id"].decode() == event_id
