"""
The backlog gauges (pending events and the oldest one's age, per lane), read from the pending
index and no more often than they are cheap.

A count reads every pending index entry of a lane, so its cost grows with the backlog: it
runs at most every ``BACKLOG_EVERY_SECONDS``, and less often when a refresh takes longer than
``BACKLOG_TIME_SHARE`` of the time between two, so that a huge backlog does not slow its own
drain. The age is that of the lane's first pending row in id order (the row the relay
publishes next), one seek in the index: ``MIN(created)`` would read every pending row.
"""

import time

from django.db.models import Count
from django.utils import timezone

from ..outbox.lanes import Lane, parse_lane
from ..outbox.models import OutboxEvent
from . import store

BACKLOG_EVERY_SECONDS = 5.0
BACKLOG_TIME_SHARE = 0.01

PENDING = OutboxEvent.STATUS.pending


def pending_counts_query(alias, lanes):
    """``(topic, lane_count, lane_index, pending rows)`` of the lanes' topics: a scan of their pending index entries."""
    return (
        OutboxEvent.objects.using(alias)
        .filter(status=PENDING, topic__in={parse_lane(lane).topic for lane in lanes})
        .values("topic", "lane_count", "lane_index")
        .annotate(count=Count("id"))
        .order_by()
        .values_list("topic", "lane_count", "lane_index", "count")
    )


def first_pending_query(alias, lane):
    """When the lane's pending rows were written, in id order: the first is one seek in the pending index."""
    return (
        store.lane_rows(alias, parse_lane(lane))  # as the claim reads them
        .order_by(*store.LANE_ORDER)
        .values_list("created", flat=True)
    )


def lane_backlog(alias, lanes) -> dict:
    """``{lane: (pending count, age in seconds of its first pending row, or None)}`` for each of ``lanes``."""
    counts = {Lane(*row[:3]).name: row[3] for row in pending_counts_query(alias, lanes)}
    now = timezone.now()
    backlog = {}
    for lane in lanes:
        created = first_pending_query(alias, lane).first() if counts.get(lane) else None
        backlog[lane] = (counts.get(lane, 0), max(0.0, (now - created).total_seconds()) if created else None)
    return backlog


class BacklogSampler:
    """Refreshes ``metrics.backlog`` from the database when due; the relay calls it after each pass."""

    def __init__(self, alias, metrics):
        self.alias = alias
        self.metrics = metrics
        self.due_at = 0.0
        self.last_cost = 0.0

    def sample_if_due(self, lanes):
        started = time.monotonic()
        if started < self.due_at:
            return
        self.metrics.backlog(lane_backlog(self.alias, lanes))
        self.last_cost = time.monotonic() - started
        self.due_at = started + max(BACKLOG_EVERY_SECONDS, self.last_cost / BACKLOG_TIME_SHARE)
