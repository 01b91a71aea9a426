"""
Claiming ("the pending rows of one lane, in id order, first N") must be an index range scan
on every database. The plans printed here are the ones quoted in docs/indexes.rst.
"""
import uuid
from datetime import datetime, timezone

import pytest
from django.db import connection

from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.relay import store

pytestmark = pytest.mark.django_db(transaction=True)


def _rows(count, status, topic):
    now = datetime.now(timezone.utc)
    return [OutboxEvent(event_id=uuid.uuid4(), event_type="t", topic=topic, event_key_field="k", event_key="k",
                        payload={}, event_time=now, source="s", sourcehost="h", sourcelib="1.0.0", status=status)
            for _ in range(count)]


def test_claim_query_is_an_index_range_scan():
    for topic in ("lane-a", "lane-b", "lane-c"):
        OutboxEvent.objects.bulk_create(_rows(3000, "sent", topic), batch_size=1000)
        OutboxEvent.objects.bulk_create(_rows(50, "pending", topic), batch_size=1000)
    with connection.cursor() as cursor:
        cursor.execute({"postgresql": "ANALYZE edx_event_bus_outbox_event",
                        "mysql": "ANALYZE TABLE edx_event_bus_outbox_event",
                        "sqlite": "ANALYZE"}[connection.vendor])
        if connection.vendor == "mysql":
            cursor.fetchall()

    claim = OutboxEvent.objects.filter(topic="lane-b", status="pending").order_by("id")[:500]
    plan = claim.explain()
    print(f"\n{connection.vendor} plan for {claim.query}:\n{plan}")
    if connection.vendor == "postgresql":
        assert "Index Scan using outbox_pending_lane_idx" in plan and "Sort" not in plan
    elif connection.vendor == "mysql":
        assert "outbox_status_lane_idx" in plan and "filesort" not in plan.lower()
    else:
        assert "USING INDEX outbox_pending_lane_idx (topic=?)" in plan and "TEMP B-TREE" not in plan
    assert [row.id for row in store.pending_batch("default", "lane-b", 500)] == [row.id for row in claim]
