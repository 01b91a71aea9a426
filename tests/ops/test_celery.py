"""
The Celery tasks on a real worker (``celery worker --pool=solo``) with the local stack's Redis
as broker and result backend, working on this test's database.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from edx_event_bus_outbox.models import OutboxEvent, RelayLease
from edx_event_bus_outbox.tasks import purge_outbox, relay_outbox_batch
from tests.ops.rows import make_row
from tests.outbox_tools import write_events

pytestmark = pytest.mark.django_db(transaction=True)


def test_purge_task_deletes_only_old_sent_rows(celery_worker_process):
    old = timezone.now() - timedelta(days=10)  # EVENT_BUS_OUTBOX_RETENTION_DAYS is 7
    for _ in range(3):
        make_row(status="sent", sent_at=old)
    kept = {
        make_row(status="sent", sent_at=timezone.now() - timedelta(days=1)).id,
        make_row(status="dead").id,
        make_row(status="pending").id,
    }
    OutboxEvent.objects.filter(id__in=kept).update(created=old)

    assert celery_worker_process.run(purge_outbox, batch_size=2) == 3

    assert set(OutboxEvent.objects.values_list("id", flat=True)) == kept


def test_relay_task_skips_a_lane_that_another_relay_holds(celery_worker_process):
    make_row("busy-lane")
    expires = timezone.now() + timedelta(seconds=60)
    RelayLease.objects.create(lane="busy-lane", token="other-relay", holder="elsewhere:1", expires_at=expires)

    result = celery_worker_process.run(relay_outbox_batch)

    assert result == {"sent": 0, "dead": 0, "lanes_held": []}
    assert OutboxEvent.objects.get().status == "pending"
    lease = RelayLease.objects.get()
    assert (lease.token, lease.holder, lease.expires_at) == ("other-relay", "elsewhere:1", expires)


@pytest.mark.kafka
def test_relay_task_publishes_one_bounded_batch_per_call_in_order(celery_worker_process, kafka_stack, topic):
    written = write_events(topic, 7, keys=3)

    first = celery_worker_process.run(relay_outbox_batch, batch_size=5, lanes=[topic])
    assert first == {"sent": 5, "dead": 0, "lanes_held": [topic]}
    assert OutboxEvent.objects.filter(status="pending").count() == 2
    lease = RelayLease.objects.get(lane=topic)
    assert (lease.expires_at, lease.holder) == (None, "")  # released, so the next call can take it at once
    assert lease.last_sent_at is not None

    assert celery_worker_process.run(relay_outbox_batch, batch_size=5)["sent"] == 2  # default lanes: all
    assert celery_worker_process.run(relay_outbox_batch) == {"sent": 0, "dead": 0, "lanes_held": []}
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {"sent"}

    position = {str(metadata.id): index for index, metadata in enumerate(written)}
    messages = kafka_stack.read_all(topic, expected=7)
    assert sorted(position[dict(m.headers())["ce_id"].decode()] for m in messages) == list(range(7))
    for partition in {m.partition() for m in messages}:
        order = [position[dict(m.headers())["ce_id"].decode()] for m in messages if m.partition() == partition]
        assert order == sorted(order), f"partition {partition} out of commit order: {order}"
