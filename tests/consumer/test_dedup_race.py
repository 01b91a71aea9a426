"""
Hardening 9: two consumers handling the same message during a rebalance (the old owner still
busy with it when the new owner reads it) do not both run a receiver: each receiver is
claimed in the inbox before it runs, and a claim held by another consumer is waited for.
Against the real broker and each database.
"""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone
from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

from edx_event_bus_outbox.consumer.consumer import KafkaEventConsumer
from edx_event_bus_outbox.consumer.dispatch import receiver_id
from edx_event_bus_outbox.models import ConsumerInboxEntry
from tests.consumer.helpers import connected, new_group, produce_events, run_until
from tests.consumer.poison import CommittedWatch
from tests.factories import enrollment_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka, pytest.mark.timeout(120)]

CALLS = []
CALLS_LOCK = threading.Lock()


def slow_receiver(metadata, **kwargs):
    with CALLS_LOCK:
        CALLS.append(str(metadata.id))
    time.sleep(1.5)  # long enough for the other consumer to read the message meanwhile


@pytest.fixture(autouse=True)
def _fresh_calls(settings):
    settings.EVENT_BUS_OUTBOX_CONSUMER_DEDUPLICATE = True
    CALLS.clear()


def test_two_consumers_with_one_message_in_hand_run_its_receiver_once(topic):
    [metadata] = produce_events(topic, [enrollment_event()], partition=0)
    group = new_group()
    consumers = [KafkaEventConsumer(topic=topic, group_id=group) for _ in range(2)]
    # Both get the message, as the old and the new owner of a partition do during a rebalance:
    # one inbox group, two Kafka groups.
    kafka_groups = [group, new_group()]
    consumers[1].kafka_config["group.id"] = kafka_groups[1]
    errors = []

    def run(consumer, kafka_group):
        watch = CommittedWatch(topic, kafka_group, 1)
        try:
            run_until(consumer, done=watch.at_end, timeout=40)
        except Exception as exc:  # noqa: BLE001  collected and asserted on
            errors.append(exc)
        finally:
            connections.close_all()  # this thread's connections, so that the test database can be dropped

    with connected(slow_receiver, COURSE_ENROLLMENT_CREATED):
        threads = [threading.Thread(target=run, args=pair) for pair in zip(consumers, kafka_groups, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert CALLS == [str(metadata.id)], "the receiver ran once, although both consumers finished the message"
    [row] = ConsumerInboxEntry.objects.filter(group_id=group)
    assert (str(row.event_id), row.receiver, row.claimed_by) == (str(metadata.id), receiver_id(slow_receiver), None)


def test_a_claim_left_by_a_dead_consumer_is_taken_over(topic, settings):
    settings.EVENT_BUS_OUTBOX_CONSUMER_INBOX_CLAIM_SECONDS = 60
    [metadata] = produce_events(topic, [enrollment_event()], partition=0)
    group = new_group()
    ConsumerInboxEntry.objects.create(
        group_id=group,
        event_id=metadata.id,
        receiver=receiver_id(slow_receiver),
        processed_at=timezone.now() - timedelta(seconds=61),
        claimed_by="dead" * 8,
    )
    with connected(slow_receiver, COURSE_ENROLLMENT_CREATED):
        run_until(topic, group, done=CommittedWatch(topic, group, 1).at_end, timeout=40)
    assert CALLS == [str(metadata.id)]
    assert ConsumerInboxEntry.objects.get(group_id=group).claimed_by is None


def test_a_live_claim_is_waited_for_and_then_honoured(topic):
    [metadata] = produce_events(topic, [enrollment_event()], partition=0)
    group = new_group()
    claim = ConsumerInboxEntry.objects.create(
        group_id=group,
        event_id=metadata.id,
        receiver=receiver_id(slow_receiver),
        processed_at=timezone.now(),
        claimed_by="other" * 6,
    )

    def other_consumer_finishes():
        time.sleep(2)
        ConsumerInboxEntry.objects.filter(pk=claim.pk).update(claimed_by=None, processed_at=timezone.now())

    finisher = threading.Thread(target=other_consumer_finishes)
    with connected(slow_receiver, COURSE_ENROLLMENT_CREATED):
        finisher.start()
        started = time.monotonic()
        run_until(topic, group, done=CommittedWatch(topic, group, 1).at_end, timeout=40)
        finisher.join()
    assert CALLS == [], "the other consumer ran it"
    assert time.monotonic() - started >= 2, "the message was finished only once the claim was done"
