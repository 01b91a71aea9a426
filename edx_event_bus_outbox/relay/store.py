"""
The relay's database side: read a lane's pending rows, then record what Kafka said.

Each function is one short statement or transaction; none is ever open while the relay
talks to Kafka.
"""
import uuid
from datetime import datetime, timedelta
from typing import NamedTuple, Optional

from django.db import connections, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..outbox.models import OutboxEvent

STATUS = OutboxEvent.STATUS


def pending_lanes(alias) -> list:
    """
    The lanes (topics) that have pending rows, in order.

    A ``DISTINCT`` over the pending rows reads the whole backlog, and the relay asks on every
    pass (41 ms per pass at 100k pending rows on PostgreSQL). Instead each lane costs one seek
    in the pending index: the first pending topic, then the first one after it, and so on.
    (A recursive CTE would do it in one statement, but MariaDB cannot seek inside one.)
    """
    lanes = []
    while (lane := next_lane_query(alias, lanes[-1] if lanes else None).first()) is not None:
        lanes.append(lane)
    return lanes


def next_lane_query(alias, after):
    """The first pending topic after ``after`` (or the first of all)."""
    query = OutboxEvent.objects.using(alias).filter(status=STATUS.pending)
    if after is not None:
        query = query.filter(topic__gt=after)
    return query.order_by("topic").values_list("topic", flat=True)


def any_pending(alias, only=None) -> bool:
    """Whether the lanes in ``only`` (or any lane) have a pending row: the claim's and the lane search's seeks."""
    if only:
        return any(claim_query(alias, lane).first() is not None for lane in only)
    return next_lane_query(alias, None).first() is not None


class PendingRow(NamedTuple):
    """What the relay reads of a pending row: plain values, no model instance to build per row."""
    id: int
    event_id: uuid.UUID
    event_type: str
    topic: str
    event_key_field: str
    event_key: object
    payload: dict
    event_time: datetime
    minorversion: int
    source: str
    sourcehost: str
    sourcelib: str
    attempts: int
    next_attempt_at: Optional[datetime]


def claim_query(alias, lane):
    """
    The lane's pending rows in id order (see the ordering ADR: never an id cursor).

    The lane is matched as the range ``lane <= topic <= lane`` and the rows are ordered by
    (topic, id): the same rows in the same order as ``topic = lane ORDER BY id``, but only the
    pending index can produce that order. With an equality PostgreSQL sees ``ORDER BY id``,
    which the primary key gives too; once its statistics say many rows are pending, it walks
    the primary key from the lowest id, past every sent row, on every claim, and a 100k drain
    slowed fourfold from start to end. tests/test_indexes.py holds every database to the index.
    """
    return (OutboxEvent.objects.using(alias).filter(topic__gte=lane, topic__lte=lane, status=STATUS.pending)
            .order_by("topic", "id").values_list(*PendingRow._fields))


def pending_batch(alias, lane, limit) -> list:
    """The lane's first ``limit`` pending rows in id order."""
    return [PendingRow(*row) for row in claim_query(alias, lane)[:limit]]


def mark_sent(alias, deliveries, delete: bool):
    """
    Record acknowledged rows: sent with partition and offset, or deleted.

    Each statement is atomic on its own and needs no surrounding transaction (which would
    cost two more round trips per batch). A crash between two chunks leaves the later one
    pending, to be re-sent in order: at least once, never out of order (ADR 1).
    """
    if not deliveries:
        return
    if delete:
        OutboxEvent.objects.using(alias).filter(id__in=[d.row_id for d in deliveries]).delete()
        return
    connection, now = connections[alias], timezone.now()
    with connection.cursor() as cursor:
        for start in range(0, len(deliveries), MARK_CHUNK):
            cursor.execute(*_mark_sent_statement(connection, deliveries[start:start + MARK_CHUNK], now))


# Rows per UPDATE; also keeps SQLite under its 500-term compound SELECT limit.
MARK_CHUNK = 500


def _mark_sent_statement(connection, deliveries, now):
    """
    One UPDATE joining the table to the (id, partition, offset) triples of a chunk.

    Django's ``bulk_update`` builds a CASE expression per row and per column, which made
    marking cost more than publishing; a join against a derived table is a single, cheap
    statement on every database. Each database spells the derived table its own way; on
    PostgreSQL the triples travel as three arrays, so the statement text never changes and
    its plan is reused.
    """
    quote, table = connection.ops.quote_name, connection.ops.quote_name(OutboxEvent._meta.db_table)
    if connection.vendor == "postgresql":
        acked, id_, p, o = "unnest(%s::bigint[], %s::integer[], %s::bigint[]) AS acked (id, p, o)", \
            "acked.id", "acked.p", "acked.o"
        params = [[d.row_id for d in deliveries], [d.partition for d in deliveries], [d.offset for d in deliveries]]
    else:
        params = [value for d in deliveries for value in (d.row_id, d.partition, d.offset)]
    if connection.vendor == "mysql":
        acked = " UNION ALL ".join(["SELECT %s AS id, %s AS p, %s AS o"] * len(deliveries))
        assignments = (f"{table}.{quote('status')} = %s, {table}.{quote('sent_at')} = %s, "
                       f"{table}.{quote('next_attempt_at')} = NULL, {table}.{quote('partition')} = acked.p, "
                       f"{table}.{quote('offset')} = acked.o")
        return (f"UPDATE {table} JOIN ({acked}) AS acked ON {table}.{quote('id')} = acked.id SET {assignments}",
                params + [STATUS.sent, now])
    if connection.vendor == "sqlite":  # SQLite names the columns of a VALUES table column1, column2, ...
        acked = f"(VALUES {', '.join(['(%s, %s, %s)'] * len(deliveries))}) AS acked"
        id_, p, o = "acked.column1", "acked.column2", "acked.column3"
    return (f"UPDATE {table} SET {quote('status')} = %s, {quote('sent_at')} = %s, {quote('next_attempt_at')} = NULL, "
            f"{quote('partition')} = {p}, {quote('offset')} = {o} FROM {acked} WHERE {table}.{quote('id')} = {id_}",
            [STATUS.sent, now] + params)


def record_failure(alias, row_id, error, delay_seconds, max_attempts, dead_after_seconds) -> str:
    """
    Count a permanent failure against the row; returns its new status (``pending`` or ``dead``).

    The row goes dead only after ``max_attempts`` attempts *and* ``dead_after_seconds`` since its
    first failure: a budget in time, not in attempts, is what outlasts a rolling deploy (ADR 3).
    """
    now = timezone.now()
    with transaction.atomic(using=alias):
        OutboxEvent.objects.using(alias).filter(id=row_id).update(
            attempts=F("attempts") + 1,
            last_error=str(error)[:10000],
            next_attempt_at=now + timedelta(seconds=delay_seconds),
            failing_since=Coalesce(F("failing_since"), Value(now)),
        )
        OutboxEvent.objects.using(alias).filter(
            id=row_id, attempts__gte=max_attempts, failing_since__lte=now - timedelta(seconds=dead_after_seconds),
        ).update(status=STATUS.dead, next_attempt_at=None)
        return OutboxEvent.objects.using(alias).values_list("status", flat=True).get(id=row_id)
