"""
Per-key order survives the dead state (docs/decisions/0011-per-key-order-and-the-dead-state.rst),
and a permanent-looking error has a retry budget that outlasts a rolling deploy (ADR 3).

Against the real broker and registry, on whichever database ``OUTBOX_TEST_DB`` names.
"""

import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from openedx_events.data import EventsMetadata
from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED
from openedx_events.tooling import OpenEdxPublicSignal

from edx_event_bus_outbox import conf, create_producer
from edx_event_bus_outbox.kafka.headers import header_values
from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.relay.relay import Relay, RelayOptions
from tests.factories import CourseDataFactory, CourseEnrollmentDataFactory, enrollment_event
from tests.outbox_tools import KEY_FIELD, course_key, drain
from tests.relay.checker import check

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka]

STATUS = OutboxEvent.STATUS
# Permanent errors go dead at once here; the default budget is tested on its own below.
DIES_AT_ONCE = {"max_attempts": 1, "dead_after_seconds": 0, "backoff": (0.01, 0.05)}


NEWER_TYPE = "org.openedx.learning.course.enrollment.from.a.newer.service.v1"


def send(topic, key, newer=False, big=False):
    """
    Commit one enrollment event of course key ``key``. ``newer`` gives it an event type this
    relay has no signal for, as a service deployed before the relay would write; ``big`` makes
    it about 4 kB.
    """
    signal, _, _ = enrollment_event()
    metadata = EventsMetadata(event_type=signal.event_type)
    course = CourseDataFactory(course_key=course_key(key), **({"display_name": "x" * 4000} if big else {}))
    with transaction.atomic():
        create_producer().send(
            signal=signal,
            topic=topic,
            event_key_field=KEY_FIELD,
            event_metadata=metadata,
            event_data={"enrollment": CourseEnrollmentDataFactory(course=course)},
        )
    if newer:
        OutboxEvent.objects.filter(event_id=metadata.id).update(event_type=NEWER_TYPE)
    return str(metadata.id)


@contextmanager
def relay_knows_the_newer_type():
    """The fix: the relay is upgraded to a version that has the newer signal."""
    signal = OpenEdxPublicSignal(event_type=NEWER_TYPE, data=COURSE_ENROLLMENT_CREATED.init_data)
    try:
        yield signal
    finally:
        del OpenEdxPublicSignal._mapping[NEWER_TYPE]
        OpenEdxPublicSignal.instances.remove(signal)


def set_max_message_bytes(kafka_stack, topic, value):
    resource = ConfigResource(
        "topic",
        topic,
        incremental_configs=[ConfigEntry("max.message.bytes", str(value), incremental_operation=AlterConfigOpType.SET)],
    )
    for future in kafka_stack.admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def published(kafka_stack, topic, expected):
    messages = kafka_stack.read_all(topic, expected=expected)
    return messages, {header_values(m.headers(), "ce_id")[0] for m in messages}


def status_of(event_id):
    return OutboxEvent.objects.values_list("status", flat=True).get(event_id=event_id)


def test_a_dead_row_holds_later_rows_of_its_key_until_requeued_then_all_go_out_in_order(kafka_stack, topic):
    """
    A's second event has a type this relay cannot publish and goes dead. A's later events must
    wait behind it (held), also those written after it died, while B keeps flowing; once the
    relay is upgraded and the operator requeues, A's events reach Kafka in commit order.
    """
    order = [
        send(topic, "A"),
        send(topic, "B"),
        send(topic, "A", newer=True),
        send(topic, "B"),
        send(topic, "A"),
        send(topic, "B"),
        send(topic, "A"),
    ]
    a1, b1, a2, b2, a3, b3, a4 = order

    drain(topic, **DIES_AT_ONCE)
    assert status_of(a2) == STATUS.dead
    _, ids = published(kafka_stack, topic, expected=4)
    assert ids == {a1, b1, b2, b3}, "only A's events after its dead one may be missing"
    assert [status_of(e) for e in (a3, a4)] == [STATUS.held, STATUS.held]

    late_a, late_b = send(topic, "A"), send(topic, "B")  # written while A's event is dead
    order += [late_a, late_b]
    drain(topic, **DIES_AT_ONCE)
    _, ids = published(kafka_stack, topic, expected=5)
    assert late_b in ids and late_a not in ids and status_of(late_a) == STATUS.held

    with relay_knows_the_newer_type():  # the operator fixes the cause ...
        call_command("requeue_outbox", "--topic", topic)  # ... and requeues
        assert [status_of(e) for e in (a2, a3, a4, late_a)] == [STATUS.pending] * 4
        drain(topic, **DIES_AT_ONCE)

    messages, ids = published(kafka_stack, topic, expected=len(order))
    verdict = check(messages, order)
    assert verdict.ok() and verdict.duplicates == 0, verdict.summary()
    assert OutboxEvent.objects.exclude(status=STATUS.sent).count() == 0


def test_requeue_releases_only_the_rows_held_behind_the_requeued_row(kafka_stack, topic):
    """Two keys with a dead row each: requeueing one key's row frees that key only."""
    a_dead, b_dead = send(topic, "A", newer=True), send(topic, "B", newer=True)
    a_later, b_later = send(topic, "A"), send(topic, "B")
    drain(topic, **DIES_AT_ONCE)
    assert [status_of(e) for e in (a_dead, b_dead, a_later, b_later)] == [
        STATUS.dead,
        STATUS.dead,
        STATUS.held,
        STATUS.held,
    ]

    row_id = OutboxEvent.objects.get(event_id=a_dead).id
    with relay_knows_the_newer_type():
        call_command("requeue_outbox", "--id", str(row_id))
        assert [status_of(e) for e in (a_dead, a_later, b_dead, b_later)] == [
            STATUS.pending,
            STATUS.pending,
            STATUS.dead,
            STATUS.held,
        ]
        drain(topic, **DIES_AT_ONCE)
    _, ids = published(kafka_stack, topic, expected=2)
    assert ids == {a_dead, a_later}
    assert status_of(b_later) == STATUS.held


def test_a_row_the_broker_refuses_is_resent_before_its_key_s_newest_event(kafka_stack, topic):
    """
    A refusal by the broker (MSG_SIZE_TOO_LARGE) arrives in a delivery report, after later
    rows of the batch were produced, so a later event of the key may already be on Kafka.
    It is never marked sent while the refused row is dead, and once the operator raised the
    limit and requeued, it goes out again after it: the key's last message is its newest.
    """
    set_max_message_bytes(kafka_stack, topic, 3000)
    order = [
        send(topic, "A"),
        send(topic, "B"),
        send(topic, "A", big=True),
        send(topic, "A"),
        send(topic, "B"),
        send(topic, "A"),
    ]
    drain(topic, **DIES_AT_ONCE)
    # The broker refuses a whole record batch, so A's first event may die with the big one.
    a_statuses = [
        status
        for status, key in OutboxEvent.objects.order_by("id").values_list("status", "event_key")
        if key == str(course_key("A"))
    ]
    first_dead = a_statuses.index(STATUS.dead)
    assert first_dead <= 1 and STATUS.sent not in a_statuses[first_dead + 1 :], a_statuses

    set_max_message_bytes(kafka_stack, topic, 1000000)
    call_command("requeue_outbox", "--topic", topic)
    drain(topic, **DIES_AT_ONCE)
    assert OutboxEvent.objects.exclude(status=STATUS.sent).count() == 0
    messages = kafka_stack.read_all(topic)
    verdict = check(messages, order)
    assert not verdict.lost and not verdict.phantom and not verdict.stale_last, verdict.summary()


def test_an_event_type_this_relay_does_not_know_does_not_go_dead_within_seconds_by_default(topic):
    """
    A rolling deploy: a newer service writes an event type that this (older) relay has no
    signal for. With the default retry budget the row keeps retrying, however often it fails,
    and its lane waits for the newer relay instead of sending it to dead.
    """
    assert conf.relay_dead_after_seconds() >= 900
    row_id = OutboxEvent.objects.get(event_id=send(topic, "A", newer=True)).id

    relay = Relay(RelayOptions(lanes=[topic], poll_interval=0.05, backoff=(0.01, 0.02)))  # default budget
    worker = threading.Thread(target=relay.run, daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while OutboxEvent.objects.get(id=row_id).attempts < 3 * conf.relay_max_attempts():
            assert time.monotonic() < deadline, "the relay stopped retrying"
            assert relay.dead_total == 0
            time.sleep(0.1)
    finally:
        relay.stop()
        worker.join(timeout=30)
    row = OutboxEvent.objects.get(id=row_id)
    assert row.status == STATUS.pending and relay.dead_total == 0
    assert f"no OpenEdxPublicSignal of type {NEWER_TYPE!r}" in row.last_error


def test_a_row_goes_dead_once_it_has_failed_for_longer_than_the_budget(topic, settings):
    settings.EVENT_BUS_OUTBOX_RELAY_DEAD_AFTER_SECONDS = 3600
    row_id = OutboxEvent.objects.get(event_id=send(topic, "A", newer=True)).id

    relay = Relay(RelayOptions(lanes=[topic], max_attempts=1, backoff=(0.01, 0.02)))
    relay.relay_once()
    row = OutboxEvent.objects.get(id=row_id)
    assert row.status == STATUS.pending and row.attempts == 1 and row.failing_since is not None

    # The first failure an hour and a minute ago: the next one is past the budget.
    OutboxEvent.objects.filter(id=row_id).update(
        failing_since=timezone.now() - timedelta(seconds=3660), next_attempt_at=None
    )
    relay = Relay(RelayOptions(lanes=[topic], max_attempts=1, backoff=(0.01, 0.02)))
    relay.relay_once()
    assert OutboxEvent.objects.get(id=row_id).status == STATUS.dead and relay.dead_total == 1
