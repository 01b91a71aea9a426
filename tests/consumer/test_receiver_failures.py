"""
Failed receivers are retried (alone) with backoff; then the message goes to the
dead-letter topic with its original key, value and headers, or is logged and skipped; and
consumption continues. The offset is committed only once that is done.
"""

import logging
import time

import pytest
from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED, SESSION_LOGIN_COMPLETED

from edx_event_bus_outbox.consumer.errors import DeadLetterError
from tests.consumer.helpers import (
    Received,
    assert_everything_committed,
    assert_no_payload_logged,
    connected,
    group_offsets,
    header_dict,
    new_group,
    produce_events,
    run_until,
)
from tests.factories import UserDataFactory, enrollment_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka]


class Broken(Exception):
    pass


def _login_event():
    return SESSION_LOGIN_COMPLETED, "user.pii.username", {"user": UserDataFactory()}


def test_only_the_failed_receiver_is_retried_with_growing_backoff(topic, settings, kafka_stack):
    settings.EVENT_BUS_OUTBOX_CONSUMER_MAX_RETRIES = 3
    settings.EVENT_BUS_OUTBOX_CONSUMER_RETRY_BACKOFF_SECONDS = 0.2
    settings.EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TOPIC = f"{topic}-dlt"
    kafka_stack.create_topic(f"{topic}-dlt")
    produce_events(topic, [enrollment_event()])
    steady_calls, flaky_calls = [], []

    def steady(**kwargs):
        steady_calls.append(kwargs["metadata"].id)

    def flaky(**kwargs):
        flaky_calls.append(time.monotonic())
        if len(flaky_calls) < 3:
            raise Broken("not yet")

    group = new_group()
    with connected(steady, COURSE_ENROLLMENT_CREATED), connected(flaky, COURSE_ENROLLMENT_CREATED):
        run_until(topic, group, done=lambda: len(flaky_calls) >= 3)

    assert len(steady_calls) == 1, "a receiver that succeeded is not called again"
    assert len(flaky_calls) == 3
    first_wait, second_wait = flaky_calls[1] - flaky_calls[0], flaky_calls[2] - flaky_calls[1]
    assert 0.2 <= first_wait < 0.4 + 0.5 and 0.4 <= second_wait < 0.8 + 0.5, (first_wait, second_wait)
    assert kafka_stack.read_all(f"{topic}-dlt") == []
    assert_everything_committed(topic, group)


def test_debug_mode_send_raises_so_the_whole_send_is_retried(topic, settings):
    # With DEBUG (or allow_send_event_failure) openedx-events uses send(), which raises at the
    # first failing receiver; the consumer cannot tell who ran, so it sends again.
    settings.DEBUG = True
    settings.EVENT_BUS_OUTBOX_CONSUMER_MAX_RETRIES = 2
    produce_events(topic, [enrollment_event()])
    calls = []

    def flaky_once(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise Broken("first time")

    with connected(flaky_once, COURSE_ENROLLMENT_CREATED):
        run_until(topic, new_group(), done=lambda: len(calls) >= 2)
    assert len(calls) == 2


def test_after_the_retries_the_message_is_dead_lettered_as_it_was_and_consumption_continues(
    topic, settings, kafka_stack, caplog
):
    dead_letter_topic = f"{topic}-dlt"
    kafka_stack.create_topic(dead_letter_topic)
    settings.EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TOPIC = dead_letter_topic
    settings.EVENT_BUS_OUTBOX_CONSUMER_MAX_RETRIES = 2
    events = [enrollment_event(), _login_event()]
    failing_id, next_id = [str(m.id) for m in produce_events(topic, events, partition=0)]
    original = kafka_stack.read_all(topic)[0]
    broken_calls, received = [], Received()

    def broken(**kwargs):
        broken_calls.append(1)
        raise Broken("receiver is broken")

    group = new_group()
    caplog.set_level(logging.INFO)
    with connected(broken, COURSE_ENROLLMENT_CREATED), connected(received, SESSION_LOGIN_COMPLETED):
        run_until(topic, group, done=lambda: received.ids)

    assert len(broken_calls) == 3, "one attempt and two retries"
    assert received.ids == [next_id], "consumption continued after the dead letter"
    [dead] = kafka_stack.read_all(dead_letter_topic)
    assert (dead.key(), dead.value()) == (original.key(), original.value())
    assert dead.headers()[: len(original.headers())] == original.headers()
    headers = header_dict(dead)
    assert headers["ce_id"] == failing_id
    assert headers["dlt_reason"] == "receiver_failed"
    assert "broken" in headers["dlt_error"] and "receiver is broken" in headers["dlt_error"]
    assert (headers["dlt_original_topic"], headers["dlt_original_partition"], headers["dlt_original_offset"]) == (
        topic,
        "0",
        "0",
    )
    assert headers["dlt_consumer_group"] == group
    assert group_offsets(topic, group)[0] == 2
    assert f"Message dead-lettered to {dead_letter_topic}" in caplog.text and failing_id in caplog.text
    assert_no_payload_logged(caplog.text, events)


def test_without_a_dead_letter_topic_the_message_is_logged_and_skipped(topic, settings, caplog):
    settings.EVENT_BUS_OUTBOX_CONSUMER_MAX_RETRIES = 1
    events = [enrollment_event(), _login_event()]
    failing_id, next_id = [str(m.id) for m in produce_events(topic, events, partition=0)]
    received = Received()

    def broken(**kwargs):
        raise Broken("receiver is broken")

    group = new_group()
    caplog.set_level(logging.INFO)
    with connected(broken, COURSE_ENROLLMENT_CREATED), connected(received, SESSION_LOGIN_COMPLETED):
        run_until(topic, group, done=lambda: received.ids)

    assert received.ids == [next_id]
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Message skipped")]
    assert len(skipped) == 1 and "receiver_failed" in skipped[0] and failing_id in skipped[0]
    assert group_offsets(topic, group)[0] == 2
    assert_no_payload_logged(caplog.text, events)


def test_a_dead_letter_that_is_not_acknowledged_stops_the_consumer_without_committing(topic, settings):
    settings.EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TOPIC = "__consumer_offsets"  # internal: the broker refuses writes
    settings.EVENT_BUS_OUTBOX_CONSUMER_MAX_RETRIES = 0
    produce_events(topic, [enrollment_event(), enrollment_event()], partition=0)
    calls = []

    def broken(**kwargs):
        calls.append(1)
        raise Broken("receiver is broken")

    group = new_group()
    with connected(broken, COURSE_ENROLLMENT_CREATED), pytest.raises(DeadLetterError, match="re-delivered"):
        run_until(topic, group, done=lambda: False)
    assert len(calls) == 1, "stopped at the first message"
    assert group_offsets(topic, group)[0] < 0, "nothing committed: the message will be re-delivered"


def test_stop_during_a_retry_backoff_exits_at_once_without_committing(topic, settings):
    settings.EVENT_BUS_OUTBOX_CONSUMER_RETRY_BACKOFF_SECONDS = 30
    produce_events(topic, [enrollment_event()], partition=0)
    calls = []

    def broken(**kwargs):
        calls.append(1)
        raise Broken("receiver is broken")

    group = new_group()
    with connected(broken, COURSE_ENROLLMENT_CREATED):
        started = time.monotonic()
        run_until(topic, group, done=lambda: calls)
        took = time.monotonic() - started
    assert took < 10, f"took {took:.1f}s"
    assert len(calls) == 1
    assert group_offsets(topic, group)[0] < 0, "the abandoned message is not committed"
