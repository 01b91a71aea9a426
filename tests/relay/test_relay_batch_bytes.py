"""A batch is bounded by its payload bytes as well as its row count, against the real database and broker."""

import json

import pytest
from django.db import transaction
from openedx_events.data import EventsMetadata

from edx_event_bus_outbox import create_producer
from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.relay import store
from edx_event_bus_outbox.relay.relay import Relay, RelayOptions
from edx_event_bus_outbox.relay.sink import KafkaSink
from tests.factories import CourseDataFactory, CourseEnrollmentDataFactory, enrollment_event
from tests.outbox_tools import KEY_FIELD, course_key
from tests.relay.checker import check

pytestmark = [pytest.mark.django_db(transaction=True)]

LARGE = 50_000  # characters of course display name per event


def write_large_events(topic, count):
    signal, _, _ = enrollment_event()
    written = []
    for index in range(count):
        with transaction.atomic():
            data = {
                "enrollment": CourseEnrollmentDataFactory(
                    course=CourseDataFactory(
                        course_key=course_key(index % 3), display_name=f"{index:05d}" + "x" * LARGE
                    )
                )
            }
            metadata = EventsMetadata(event_type=signal.event_type)
            create_producer().send(
                signal=signal, topic=topic, event_key_field=KEY_FIELD, event_data=data, event_metadata=metadata
            )
            written.append(metadata)
    return written


def payload_bytes(row):
    return len(json.dumps(row.payload))


def test_a_claim_stops_before_the_row_that_would_pass_the_byte_bound():
    write_large_events("bytes-lane", 6)
    one = max(payload_bytes(r) for r in OutboxEvent.objects.all())

    batch = store.pending_batch("default", "bytes-lane", 500, max_bytes=int(2.5 * one))
    assert len(batch) == 2
    assert [row.id for row in batch] == list(OutboxEvent.objects.order_by("id").values_list("id", flat=True)[:2])
    assert len(store.pending_batch("default", "bytes-lane", 500, max_bytes=one // 10)) == 1  # never empty
    assert len(store.pending_batch("default", "bytes-lane", 4, max_bytes=100 * one)) == 4  # the row count still holds


def test_the_write_stores_the_size_the_bound_reads():
    write_large_events("bytes-lane", 2)
    for row in OutboxEvent.objects.all():
        assert row.payload_size == len(json.dumps(row.payload, separators=(",", ":"))) > LARGE


def test_rows_from_before_the_size_column_are_bounded_by_their_text():
    """Rows written before migration 0008 have no stored size; the claim measures their payload instead."""
    write_large_events("bytes-lane", 6)
    one = max(payload_bytes(r) for r in OutboxEvent.objects.all())
    OutboxEvent.objects.update(payload_size=None)

    assert len(store.pending_batch("default", "bytes-lane", 500, max_bytes=int(2.5 * one))) == 2


class CountingSink(KafkaSink):
    """The real sink, remembering the size of every batch it was handed."""

    def __init__(self, lease_seconds):
        super().__init__(lease_seconds)
        self.batches = []

    def publish(self, rows, *args, **kwargs):
        self.batches.append((len(rows), sum(payload_bytes(row) for row in rows)))
        return super().publish(rows, *args, **kwargs)


@pytest.mark.kafka
def test_large_events_are_relayed_in_batches_bounded_by_bytes(kafka_stack, topic):
    written = write_large_events(topic, 24)
    bound = 200_000
    sink = CountingSink(30)
    Relay(
        RelayOptions(lanes=[topic], until_empty=True, poll_interval=0.1, batch_size=500, batch_max_bytes=bound),
        sink=sink,
    ).run()

    assert sum(rows for rows, _ in sink.batches) == 24
    assert all(size <= bound for _, size in sink.batches), sink.batches
    assert max(rows for rows, _ in sink.batches) == 3  # 3 events of ~50 kB fit in 200 kB, 4 do not
    verdict = check(kafka_stack.read_all(topic, expected=24), [str(m.id) for m in written])
    assert verdict.ok() and verdict.duplicates == 0, verdict.summary()
