"""
Claiming ("the pending rows of one lane, in id order, first N") must be an index range scan
on every database. The plans printed here are the ones quoted in docs/indexes.rst.
"""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.relay import replay, store

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
    _assert_pending_index_range_scan(str(claim.query), _explain(claim))
    assert [row.id for row in store.pending_batch("default", "lane-b", 500)] == [row[0] for row in claim]

    # The statements the relay really runs as the byte bound cuts a batch short: the claim (sizes,
    # and the payloads of rows within their share of the bound) and, for rows larger than their
    # share, a read of their payloads by id.
    cut = min(40, len(claim))
    with CaptureQueriesContext(connection) as statements:
        batch = store.pending_batch("default", "lane-b", 500, max_bytes=cut * len(json.dumps(PAYLOAD)))
    assert [row.id for row in batch] == [row[0] for row in claim[:cut]]
    assert batch[0].payload == PAYLOAD
    claim_sql, by_id_sql = (statement["sql"] for statement in statements.captured_queries)
    _assert_pending_index_range_scan(claim_sql, _explain_sql(claim_sql))
    _assert_primary_key_lookup(by_id_sql, _explain_sql(by_id_sql))


def test_the_claim_of_one_lane_of_a_split_topic_seeks_to_that_lane():
    """
    A topic of four lanes, each with a backlog: claiming the last lane must start at its first
    entry, not read the entries of the three lanes before it (a range on the topic did, on
    PostgreSQL: the columns after a range do not bound its seek).
    """
    rows = _rows(4 * 3000 // (10 if connection.vendor == "sqlite" else 1), "pending", "split")
    for index, row in enumerate(rows):
        row.lane_count, row.lane_index = 4, index * 4 // len(rows)
    OutboxEvent.objects.bulk_create(rows, batch_size=1000)
    _analyze()

    claim = store.claim_query("default", "split#3/4")[:500]
    plan = _explain(claim)
    _assert_pending_index_range_scan(str(claim.query), plan)
    assert [row[0] for row in claim] == [row.id for row in rows if row.lane_index == 3][:500]
    if connection.vendor == "postgresql":
        assert re.search(r"Index Cond: \(\(\(topic\)::text = 'split'::text\) AND \(lane_count = 4\) AND", plan), plan
    # MariaDB 10.11 may read this small table's pending entries from the start of the status index
    # (ref on status, the lane checked inside the index): pending entries only, never sorted, but
    # those of the lanes before this one too. docs/indexes.rst says so.


def _assert_primary_key_lookup(sql, plan):
    print(f"\n{connection.vendor} plan for {sql}:\n{plan}")
    if connection.vendor == "postgresql":
        assert "using edx_event_bus_outbox_event_pkey" in plan and "Seq Scan" not in plan
    elif connection.vendor == "mysql":
        assert _mysql_access(plan)["table"]["key"] == "PRIMARY"
    else:
        assert "USING INTEGER PRIMARY KEY (rowid=?)" in plan


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
        assert "Index Scan using outbox_pending_lanes_idx" in plan and "Sort" not in plan
    elif connection.vendor == "mysql":
        access = _mysql_access(plan)
        assert access["table"]["key"] == "outbox_status_lanes_idx" and "filesort" not in access
    else:
        seek = "USING INDEX outbox_pending_lanes_idx (topic=? AND lane_count=? AND lane_index=?)"
        assert seek in plan and "TEMP B-TREE" not in plan and "SCAN" not in plan


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
            assert "Index Only Scan using outbox_pending_lanes_idx" in plan and "Sort" not in plan, plan
            assert re.search(r"Index Only Scan using outbox_pending_lanes_idx .*actual .*rows=1 loops=1", plan), plan
        elif connection.vendor == "mysql":
            assert "outbox_status_lanes_idx" in plan and "filesort" not in plan.lower(), plan
            assert plan.split()[5] == "outbox_status_lanes_idx", plan  # the key column: the index used
        else:
            assert re.search(r"USING (COVERING )?INDEX outbox_pending_lanes_idx", plan) and "TEMP B-TREE" not in plan, (
                plan
            )


def _replay_history(rows_per_topic):
    """Three topics interleaved, a row a second over the retained days, nearly all sent: what a replay reads."""
    scale = 10 if connection.vendor == "sqlite" else 1
    start, count = datetime(2026, 11, 24, tzinfo=UTC), 3 * rows_per_topic // scale
    rows = _rows(count, "sent", "lane-a")
    for index, row in enumerate(rows):
        row.topic = ("lane-a", "lane-b", "lane-c")[index % 3]
        row.created = start + timedelta(seconds=index)
        row.sent_at = row.created + timedelta(milliseconds=50)
        if index % 97 == 0:
            row.status = "pending"
    OutboxEvent.objects.bulk_create(rows, batch_size=1000)
    return start, count


@pytest.mark.parametrize("share", ["an hour in the middle", "the newest half, one topic"])
def test_replay_batches_walk_the_primary_key_from_the_cursor(share):
    """
    A replay reads ``id > cursor AND id <= last`` in id order, filtered by status, created time and
    topic. It must walk an index in id order from the cursor and stop after a batch of matches: a
    plan that reads the created-time index and sorts would sort the whole range again for every
    batch. The primary key serves, so replay needs no index of its own (which every write would pay).
    """
    start, count = _replay_history(5000)
    _analyze()
    if share == "an hour in the middle":
        selection = replay.Selection(
            since=start + timedelta(seconds=count // 2), until=start + timedelta(seconds=count // 2 + 3600)
        )
    else:
        selection = replay.Selection(since=start + timedelta(seconds=count // 2), topics=("lane-b",))
    plan = replay.plan_replay(selection)
    window = selection.rows("default").filter(id__gt=plan.first_id - 1, id__lte=plan.last_id).order_by("id")
    for query in (window.values_list("id", "payload")[:500], window.values_list("id")[:500]):
        plan_text = query.explain(format="JSON") if connection.vendor == "mysql" else query.explain()
        print(f"\n{connection.vendor} plan for {query.query}:\n{plan_text}")
        if connection.vendor == "postgresql":
            assert "Index Scan using edx_event_bus_outbox_event_pkey" in plan_text and "Sort" not in plan_text
        elif connection.vendor == "mysql":
            access = _mysql_access(plan_text)
            # With one topic of one lane MariaDB may take (topic, lane_count, lane_index, id) or the same
            # after status, whose entries are in id order there too (it has no partial indexes).
            ordered_by_id = ("PRIMARY", "outbox_pending_lanes_idx", "outbox_status_lanes_idx")
            assert access["table"]["key"] in ordered_by_id and "filesort" not in access
        else:
            assert "USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in plan_text and "TEMP B-TREE" not in plan_text
