"""
With EVENT_BUS_OUTBOX_CONSUMER_DEDUPLICATE, a receiver that handled an event for a
consumer group is never called again for it; the inbox is purged in bounded batches.
"""

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

from edx_event_bus_outbox.consumer.dispatch import receiver_id
from edx_event_bus_outbox.models import ConsumerInboxEntry
from tests.consumer.helpers import connected, encoded, metadata_for, new_group, produce_raw, run_until
from tests.factories import enrollment_event

pytestmark = pytest.mark.django_db(transaction=True)


class Broken(Exception):
    pass


def _publish(topic, event, metadata, times):
    """The same event (same ``ce_id``) published ``times`` times, as a relay re-send would."""
    message = encoded(*event, topic, metadata)
    produce_raw(topic, [{"key": message.key, "value": message.value, "headers": message.headers}] * times, partition=0)


def _counting():
    calls = []

    def receiver(metadata, **kwargs):
        calls.append(str(metadata.id))

    receiver.outbox_receiver_id = f"counting-{uuid.uuid4().hex}"  # a closure has no identity of its own
    return receiver, calls


@pytest.mark.kafka
@pytest.mark.parametrize("deduplicate", [True, False])
def test_a_duplicate_event_reaches_each_receiver_once_only_when_deduplicating(topic, settings, deduplicate):
    settings.EVENT_BUS_OUTBOX_CONSUMER_DEDUPLICATE = deduplicate
    event, other = enrollment_event(), enrollment_event()
    duplicated, last = metadata_for(event[0]), metadata_for(other[0])
    _publish(topic, event, duplicated, times=3)
    _publish(topic, other, last, times=1)
    receiver, calls = _counting()
    group = new_group()
    with connected(receiver, COURSE_ENROLLMENT_CREATED):
        run_until(topic, group, done=lambda: str(last.id) in calls)

    expected = 1 if deduplicate else 3
    assert calls.count(str(duplicated.id)) == expected
    rows = ConsumerInboxEntry.objects.filter(group_id=group)
    if deduplicate:
        assert {(str(r.event_id), r.receiver) for r in rows} == {
            (str(duplicated.id), receiver_id(receiver)),
            (str(last.id), receiver_id(receiver)),
        }
    else:
        assert not rows.exists()


@pytest.mark.kafka
def test_on_redelivery_only_the_receivers_that_had_failed_run_again(topic, settings):
    settings.EVENT_BUS_OUTBOX_CONSUMER_DEDUPLICATE = True
    settings.EVENT_BUS_OUTBOX_CONSUMER_MAX_RETRIES = 0
    event = enrollment_event()
    metadata = metadata_for(event[0])
    _publish(topic, event, metadata, times=2)
    steady, steady_calls = _counting()
    fails_first_time = []

    def flaky(**kwargs):
        fails_first_time.append(1)
        if len(fails_first_time) == 1:
            raise Broken("first delivery fails; the message is skipped")

    flaky.outbox_receiver_id = "flaky"

    with connected(steady, COURSE_ENROLLMENT_CREATED), connected(flaky, COURSE_ENROLLMENT_CREATED):
        run_until(topic, new_group(), done=lambda: len(fails_first_time) >= 2)
    assert len(steady_calls) == 1, "the receiver that succeeded the first time was not called again"
    assert len(fails_first_time) == 2


@pytest.mark.kafka
def test_deduplication_is_per_consumer_group(topic, settings):
    settings.EVENT_BUS_OUTBOX_CONSUMER_DEDUPLICATE = True
    event = enrollment_event()
    metadata = metadata_for(event[0])
    _publish(topic, event, metadata, times=1)
    receiver, calls = _counting()
    with connected(receiver, COURSE_ENROLLMENT_CREATED):
        for _ in range(2):
            target = len(calls) + 1
            run_until(topic, new_group(), done=lambda target=target: len(calls) >= target)
    assert calls == [str(metadata.id)] * 2


def test_purge_consumer_inbox_deletes_old_rows_in_bounded_batches(settings):
    settings.EVENT_BUS_OUTBOX_CONSUMER_INBOX_RETENTION_DAYS = 7
    now = timezone.now()
    ages = [30, 10, 8, 7.5, 6, 1, 0]
    ConsumerInboxEntry.objects.bulk_create(
        [
            ConsumerInboxEntry(
                group_id="g",
                event_id=f"00000000-0000-0000-0000-{i:012d}",
                receiver="r",
                processed_at=now - timedelta(days=age),
            )
            for i, age in enumerate(ages)
        ]
    )
    out = StringIO()
    call_command("purge_consumer_inbox", "--batch-size", "2", stdout=out)

    kept = sorted(round((now - r.processed_at) / timedelta(days=1)) for r in ConsumerInboxEntry.objects.all())
    assert kept == [0, 1, 6]
    assert "Purged 4 consumer inbox row(s)" in out.getvalue()
    assert "in 2 batch(es) of at most 2" in out.getvalue()


def test_purge_consumer_inbox_takes_days_from_the_command_line():
    ConsumerInboxEntry.objects.create(
        group_id="g",
        event_id="00000000-0000-0000-0000-000000000001",
        receiver="r",
        processed_at=timezone.now() - timedelta(days=2),
    )
    out = StringIO()
    call_command("purge_consumer_inbox", "--days", "3", stdout=out)
    assert ConsumerInboxEntry.objects.count() == 1
    call_command("purge_consumer_inbox", "--days", "1", stdout=out)
    assert ConsumerInboxEntry.objects.count() == 0
    assert "Purged 1 consumer inbox row(s)" in out.getvalue()
