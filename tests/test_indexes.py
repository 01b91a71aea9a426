"""
Claiming ("the pending rows of one lane, in id order, first N") must be an index range scan
on every database. The plans printed here are the ones quoted in docs/indexes.rst.
"""

import json
import re
import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.relay import store

pytestmark = pytest.mark.django_db(transaction=True)


PAYLOAD = {
    "user": {"id": 42, "pii": {"username": "u" * 30, "email": "e" * 40, "name": "n" * 40}},
    "course": {"course_key": "course-v1:edX+DemoX+Demo_Course", "display_name": "d" * 80},
    "mode": "audit",
    "is_active": True,
    "notes": "x" * 200,
}  # about the size of an enrollment event


def _rows(count, status, topic):
    now = datetime.now(UTC)
    return [
        OutboxEvent(
            event_id=uuid.uuid4(),
            event_type="t",
            topic=topic,
            event_key_field="k",
            event_key="k",
            payload=PAYLOAD,
            payload_size=len(json.dumps(PAYLOAD)),
            event_time=now,
            source="s",
            sourcehost="h",
            sourcelib="1.0.0",
            status=status,
        )
        for _ in range(count)
    ]


def _write_history(history):
    """
    SQLite's planner goes by the proportions ANALYZE records (sqlite_stat1), which a tenth of the
    rows keeps, and so ``make test-unit`` stays fast; the server databases get the full sizes
    their cost models were seen to go wrong at.
    """
    scale = 10 if connection.vendor == "sqlite" else 1
    for topic, sent, pending in history:
        for status, count in (("sent", sent), ("pending", pending)):
            OutboxEvent.objects.bulk_create(_rows(count and max(1, count // scale), status, topic), batch_size=1000)


def _analyze():
    with connection.cursor() as cursor:
        cursor.execute(
            {
                "postgresql": "ANALYZE edx_event_bus_outbox_event",
                "mysql": "ANALYZE TABLE edx_event_bus_outbox_event",
                "sqlite": "ANALYZE",
            }[connection.vendor]
        )
        if connection.vendor == "mysql":
            cursor.fetchall()


def _mysql_access(json_plan) -> dict:
    """The table-access step of a one-table MariaDB JSON plan, with any sort wrapped around it."""
    step = json.loads(json.loads(json_plan) if json_plan.startswith('"') else json_plan)["query_block"]
    step = step.get("nested_loop", [step])[0]
    step = step.get("read_sorted_file", step)
    return step


HISTORIES = {
    # history: [(topic, sent rows, pending rows)], written in this order
    "interleaved lanes": [("lane-a", 3000, 50), ("lane-b", 3000, 50), ("lane-c", 3000, 50)],
    "a backlog half drained": [("lane-b", 30000, 20000)],
    "steady state, sent rows retained": [("lane-b", 10000, 50)],
}


@pytest.mark.parametrize("history", HISTORIES)
def test_claim_query_is_an_index_range_scan(history):
    """
    The last two histories are the ones a relay lives in: one lane's sent rows at the low ids,
    its pending rows after them. A planner that assumes the pending rows are spread evenly over
    the ids walks the primary key past every sent row on each claim (PostgreSQL did, making a
    drain quadratic, until the claim ordered by (topic, id)); a planner that takes the status
    index sorts every pending row of every lane (MariaDB did). Each must use the pending index.
    """
    _write_history(HISTORIES[history])
    _analyze()

    claim = store.claim_query("default", "lane-b")[:500]
    for query in (claim, store.sizes_query("default", "lane-b")[:500]):  # the byte bound reads sizes first
        _assert_pending_index_range_scan(str(query.query), _explain(query))
    assert [row.id for row in store.pending_batch("default", "lane-b", 500)] == [row[0] for row in claim]

    # The statements the relay really runs as the byte bound cuts a batch short, not only the queries above.
    cut = min(40, len(claim))
    with CaptureQueriesContext(connection) as statements:
        batch = store.pending_batch("default", "lane-b", 500, max_bytes=cut * len(json.dumps(PAYLOAD)))
    assert [row.id for row in batch] == [row[0] for row in claim[:cut]]
    for statement in statements.captured_queries:
        _assert_pending_index_range_scan(statement["sql"], _explain_sql(statement["sql"]))


def _explain(query):
    return query.explain(format="JSON") if connection.vendor == "mysql" else query.explain()


def _explain_sql(sql):
    prefix = {"postgresql": "EXPLAIN", "mysql": "EXPLAIN FORMAT=JSON", "sqlite": "EXPLAIN QUERY PLAN"}[
        connection.vendor
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"{prefix} {sql}")
        rows = cursor.fetchall()
    return rows[0][0] if connection.vendor == "mysql" else "\n".join(" ".join(map(str, row)) for row in rows)


def _assert_pending_index_range_scan(sql, plan):
    print(f"\n{connection.vendor} plan for {sql}:\n{plan}")
    if connection.vendor == "postgresql":
        assert "Index Scan using outbox_pending_lane_idx" in plan and "Sort" not in plan
    elif connection.vendor == "mysql":
        access = _mysql_access(plan)
        assert access["table"]["key"] == "outbox_status_lane_idx" and "filesort" not in access
    else:
        assert "USING INDEX outbox_pending_lane_idx (topic>? AND topic<?)" in plan and "TEMP B-TREE" not in plan


def test_pending_lanes_seeks_the_index_once_per_lane():
    """The relay asks for the lanes on every pass; it must not read the whole backlog to answer."""
    _write_history(HISTORIES["interleaved lanes"] + [("lane-d", 0, 20000), ("lane-e", 5, 0)])
    _analyze()

    assert store.pending_lanes("default") == ["lane-a", "lane-b", "lane-c", "lane-d"]
    for after in (None, "lane-c"):
        probe = store.next_lane_query("default", after)[:1]
        plan = probe.explain(analyze=True) if connection.vendor == "postgresql" else probe.explain()
        print(f"\n{connection.vendor} plan for {probe.query}:\n{plan}")
        if connection.vendor == "postgresql":
            assert "Index Only Scan using outbox_pending_lane_idx" in plan and "Sort" not in plan, plan
            assert re.search(r"Index Only Scan using outbox_pending_lane_idx .*actual .*rows=1 loops=1", plan), plan
        elif connection.vendor == "mysql":
            assert "outbox_status_lane_idx" in plan and "filesort" not in plan.lower(), plan
            assert plan.split()[5] == "outbox_status_lane_idx", plan  # the key column: the index used
        else:
            assert re.search(r"USING (COVERING )?INDEX outbox_pending_lane_idx", plan) and "TEMP B-TREE" not in plan, (
                plan
            )
