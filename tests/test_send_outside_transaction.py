"""
``send()`` where the outbox cannot keep its promise: in autocommit on ``EVENT_BUS_OUTBOX_DATABASE``,
or from an ``on_commit`` callback. The event is written, one WARNING per (event type, topic) says
so, and every such call sets the ``outbox_send_outside_transaction`` monitoring attribute.
Runs on whichever database OUTBOX_TEST_DB selects.
"""

import logging

import pytest
from django.db import connections, transaction
from django.http import HttpResponse
from django.urls import path
from openedx_events.data import EventsMetadata

from edx_event_bus_outbox import create_producer
from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.outbox import atomicity, on_commit
from tests.factories import enrollment_event, sample_events
from tests.test_producer import caller_writes, emit, route

pytestmark = pytest.mark.django_db(transaction=True)

ATTRIBUTE = "outbox_send_outside_transaction"


@pytest.fixture(autouse=True)
def attributes(monkeypatch):
    """The monitoring attributes set, as (name, value); and a process that has warned about nothing yet."""
    monkeypatch.setattr(atomicity, "_warned", set())
    recorded = []
    monkeypatch.setattr(atomicity, "set_custom_attribute", lambda name, value: recorded.append((name, value)))
    return recorded


@pytest.fixture
def warnings(caplog):
    caplog.set_level(logging.WARNING, logger=atomicity.__name__)
    return lambda: [r for r in caplog.records if r.name == atomicity.__name__ and r.levelno == logging.WARNING]


def send(topic="topic-a", event=None):
    signal, key_field, data = event or enrollment_event()
    metadata = EventsMetadata(event_type=signal.event_type)
    create_producer().send(
        signal=signal, topic=topic, event_key_field=key_field, event_data=data, event_metadata=metadata
    )
    return data


def send_atomically(topic):
    with transaction.atomic():
        send(topic)


def test_autocommit_warns_once_per_event_type_and_topic_and_sets_the_attribute_every_time(attributes, warnings):
    login = next(event for event in sample_events() if "login" in event[0].event_type)
    sent = [send("topic-a"), send("topic-a"), send("topic-b"), send("topic-a", event=login)]

    assert OutboxEvent.objects.count() == 4, "the events are still written"
    assert attributes == [(ATTRIBUTE, "autocommit")] * 4
    logged = warnings()
    assert [(r.args[1], r.args[2]) for r in logged] == [
        (enrollment_event()[0].event_type, "topic-a"),
        (enrollment_event()[0].event_type, "topic-b"),
        (login[0].event_type, "topic-a"),
    ]
    text = logged[0].getMessage()
    assert "in autocommit" in text and "transaction.atomic()" in text and "database 'default'" in text
    for data in sent[:3]:
        pii = data["enrollment"].user.pii
        assert not any(value in r.getMessage() for r in logged for value in (pii.username, pii.email, pii.name))


def test_inside_atomic_and_its_savepoints_nothing_is_said(attributes, warnings):
    with transaction.atomic():
        caller_writes()
        send()
        with transaction.atomic():
            send()
    assert OutboxEvent.objects.count() == 2
    assert attributes == [] and warnings() == []


def test_an_on_commit_callback_warns_even_inside_its_own_atomic(attributes, warnings):
    with transaction.atomic():
        caller_writes()
        transaction.on_commit(lambda: send("in-callback"))
        # The first callback's own atomic() resets what Django remembers of running callbacks:
        # the second one must be recognised all the same.
        transaction.on_commit(lambda: send_atomically("in-callback-atomic"))
        transaction.on_commit(lambda: send_atomically("in-later-callback-atomic"))
        assert OutboxEvent.objects.count() == 0
    assert OutboxEvent.objects.count() == 3
    assert attributes == [(ATTRIBUTE, "after-commit")] * 3
    logged = warnings()
    assert [r.args[2] for r in logged] == ["in-callback", "in-callback-atomic", "in-later-callback-atomic"]
    assert "from an on_commit callback" in logged[0].getMessage()
    assert "inside the caller's transaction instead" in logged[0].getMessage()


def test_on_commit_with_no_transaction_open_runs_the_callback_at_once_and_warns(attributes, warnings):
    transaction.on_commit(lambda: send_atomically("at-once"))
    assert OutboxEvent.objects.count() == 1
    assert attributes == [(ATTRIBUTE, "after-commit")]
    assert [r.args[2] for r in warnings()] == ["at-once"]


def test_on_commit_mode_is_not_concerned(bus, attributes, warnings, monkeypatch):
    """The on-commit mode promises only "nothing for a rollback", which autocommit keeps."""
    published = []
    monkeypatch.setattr(on_commit, "publish", lambda **kwargs: published.append(kwargs["topic"]))
    signal, key_field, data = enrollment_event()
    route(bus, signal, key_field, mode="on-commit")
    emit(signal, data)
    assert published == ["topic-a"]
    assert attributes == [] and warnings() == []


@pytest.mark.django_db(transaction=True, databases=["default", "other"])
def test_only_a_transaction_on_the_outbox_database_counts(settings, attributes, warnings):
    settings.EVENT_BUS_OUTBOX_DATABASE = "other"
    with transaction.atomic(using="default"):
        send("on-default-only")
    with transaction.atomic(using="other"):
        send("on-other")
    assert [(r.args[2], r.args[-1]) for r in warnings()] == [("on-default-only", "other")]
    assert attributes == [(ATTRIBUTE, "autocommit")]


# ---------------------------------------------------------------- edx-platform's ATOMIC_REQUESTS


def enroll(request):
    signal, _, data = enrollment_event()
    caller_writes(request.path)
    emit(signal, data)
    return HttpResponse("enrolled")


@transaction.non_atomic_requests
def enroll_without_atomic_requests(request):
    return enroll(request)


urlpatterns = [path("enroll", enroll), path("enroll-non-atomic", enroll_without_atomic_requests)]


@pytest.fixture
def atomic_requests(monkeypatch):
    """``ATOMIC_REQUESTS = True`` on the default database, as edx-platform sets it."""
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", True)


@pytest.mark.urls(__name__)
def test_atomic_requests_give_views_the_guarantee_and_non_atomic_views_are_warned_about(
    client, bus, atomic_requests, attributes, warnings
):
    signal, key_field, _ = enrollment_event()
    route(bus, signal, key_field)
    assert client.get("/enroll").status_code == 200
    assert OutboxEvent.objects.count() == 1
    assert attributes == [] and warnings() == []

    assert client.get("/enroll-non-atomic").status_code == 200
    assert OutboxEvent.objects.count() == 2
    assert attributes == [(ATTRIBUTE, "autocommit")]
    assert [r.args[1] for r in warnings()] == [signal.event_type]
