"""
The backlog gauges read the pending index and nothing else, on every database: the count is an
index scan of the lane's pending entries, the age one seek to its first pending row.
"""

import json
import re
from types import SimpleNamespace

import pytest
from django.db import connection

from edx_event_bus_outbox.outbox.status import lane_statuses
from edx_event_bus_outbox.relay import backlog
from tests.test_indexes import HISTORIES, _analyze, _mysql_access, _write_history

pytestmark = pytest.mark.django_db(transaction=True)


def _plan(query):
    plan = query.explain(format="JSON") if connection.vendor == "mysql" else query.explain()
    print(f"\n{connection.vendor} plan for {query.query}:\n{plan}")
    return plan


def _reads_only_pending_entries(plan):
    """
    The count may take either index that holds the pending rows apart (the partial one, or the
    one on status): with half the table pending and no VACUUM yet, PostgreSQL rightly prefers a
    bitmap of the status index, and MariaDB intersects both. Never a scan of the whole table.
    """
    if connection.vendor == "postgresql":
        assert "Seq Scan" not in plan, plan
        assert re.search(r"Index (Only )?Scan using outbox_pending_lanes_idx", plan) or re.search(
            r"Bitmap Index Scan on outbox_status_sent_idx\s+.*\s+Index Cond: \(\(status\)::text = 'pending'", plan
        ), plan
    elif connection.vendor == "mysql":
        access = _mysql_table(plan)
        assert access["access_type"] in ("range", "ref", "index_merge") and access.get("using_index"), plan
    else:
        assert re.search(r"USING (COVERING )?INDEX outbox_pending_lanes_idx", plan), plan


def _mysql_table(json_plan) -> dict:
    """The access to the outbox table in a MariaDB JSON plan, wherever a temporary table put it."""
    found = [json.loads(json.loads(json_plan) if json_plan.startswith('"') else json_plan)]
    while found:
        step = found.pop()
        if isinstance(step, dict):
            if "table_name" in step:
                return step
            found.extend(step.values())
        elif isinstance(step, list):
            found.extend(step)
    raise AssertionError(f"no table in {json_plan}")


def _seeks_the_pending_index(plan):
    if connection.vendor == "postgresql":
        assert "Index Scan using outbox_pending_lanes_idx" in plan and "Sort" not in plan, plan
    elif connection.vendor == "mysql":
        access = _mysql_access(plan)
        assert access["table"]["key"] == "outbox_status_lanes_idx" and "filesort" not in access, plan
    else:
        seek = "USING INDEX outbox_pending_lanes_idx (topic=? AND lane_count=? AND lane_index=?)"
        assert seek in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("history", ["interleaved lanes", "a backlog half drained"])
def test_the_backlog_queries_use_the_pending_index(history):
    _write_history(HISTORIES[history])
    _analyze()
    lanes = sorted({topic for topic, _, _ in HISTORIES[history]})

    counts = backlog.pending_counts_query("default", lanes)
    first = backlog.first_pending_query("default", lanes[-1])[:1]
    _reads_only_pending_entries(_plan(counts))
    _seeks_the_pending_index(_plan(first))

    expected = {s.lane: s for s in lane_statuses()}
    measured = backlog.lane_backlog("default", lanes)
    assert {lane: count for lane, (count, _) in measured.items()} == {lane: expected[lane].pending for lane in lanes}
    for lane, (_, age) in measured.items():
        assert age == pytest.approx(expected[lane].oldest_pending_age_seconds, abs=5)


def test_the_sampler_refreshes_at_most_every_few_seconds_and_less_when_it_is_slow(monkeypatch):
    refreshed = []
    now = [100.0]
    monkeypatch.setattr(backlog, "time", SimpleNamespace(monotonic=lambda: now[0]))

    class Metrics:
        def backlog(self, lanes_backlog):
            refreshed.append(now[0])
            now[0] += cost[0]

    cost = [0.001]
    sampler = backlog.BacklogSampler("default", Metrics())
    monkeypatch.setattr(backlog, "lane_backlog", lambda alias, lanes: {})
    for _ in range(20):
        sampler.sample_if_due(["lane"])
        now[0] += 1
    assert len(refreshed) == 4  # 20 s of passes, one refresh every 5 s
    cost[0] = 0.2  # a huge backlog: each refresh costs 200 ms
    refreshed.clear()
    for _ in range(100):
        sampler.sample_if_due(["lane"])
        now[0] += 1
    assert len(refreshed) <= 100 * 0.01 / 0.2 + 2, "the gauges took more than 1% of the relay's time"
