"""
The relay's database side: read a lane's pending rows, then record what Kafka said.

Each function is one short statement or transaction; none is ever open while the relay
talks to Kafka.
"""

import uuid
from datetime import datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

from django.db import connections, transaction
from django.db.models import (
    BooleanField,
    Case,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    JSONField,
    Q,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Length, Now

from ..outbox.lanes import Lane, parse_lane
from ..outbox.models import OutboxEvent
from .compiled import CompiledQuery

STATUS = OutboxEvent.STATUS


def pending_lanes(alias) -> list:
    """
    The names of the lanes that have pending rows, in order.

    A ``DISTINCT`` over the pending rows reads the whole backlog, and the relay asks on every
    pass (41 ms per pass at 100k pending rows on PostgreSQL). Instead each lane costs a seek or
    three in the pending index: the first pending topic, then the first one after it, and so on,
    and within each topic its lanes the same way. (A recursive CTE would do it in one statement,
    but MariaDB cannot seek inside one.)
    """
    lanes, topic = [], None
    while (topic := next_lane_query(alias, topic).first()) is not None:
        lanes += [lane.name for lane in lanes_of_topic(alias, topic)]
    return lanes


def next_lane_query(alias, after):
    """The first pending topic after ``after`` (or the first of all)."""
    query = OutboxEvent.objects.using(alias).filter(status=STATUS.pending)
    if after is not None:
        query = query.filter(topic__gt=after)
    return query.order_by("topic").values_list("topic", flat=True)


def lanes_of_topic(alias, topic, count_below=None, count_above=None) -> list:
    """
    The topic's lanes that have pending rows, each found by a seek or two; only those written
    with fewer lanes than ``count_below``, or with more than ``count_above``, when given.
    """
    rows = _pending_of_topic(alias, topic)
    ranges = [rows.filter(lane_count__lt=count_below)] if count_below is not None else []
    ranges += [rows.filter(lane_count__gt=count_above)] if count_above is not None else []
    found = []
    for query in ranges or [rows]:
        first = _first_lane_columns(query)
        while first is not None:
            found.append(Lane(topic, *first))
            count, index = first
            first = _first_lane_columns(query.filter(lane_count=count, lane_index__gt=index)) or _first_lane_columns(
                query.filter(lane_count__gt=count)
            )
    return found


def _first_lane_columns(query):
    return query.order_by("lane_count", "lane_index").values_list("lane_count", "lane_index").first()


def _pending_of_topic(alias, topic):
    return OutboxEvent.objects.using(alias).filter(status=STATUS.pending, topic=topic)


def lane_rows(alias, lane: Lane):
    """
    The lane's pending rows, to be read in ``LANE_ORDER``: a seek to the lane's first entry in
    the pending index, with one column matched as a range, for the reason ``claim_query`` gives.
    Which column differs by database; tests/test_indexes.py shows each plan.
    """
    rows = OutboxEvent.objects.using(alias).filter(status=STATUS.pending)
    vendor = connections[alias].vendor
    if vendor == "postgresql":  # the last column before id: the equalities before it still bound the seek
        return rows.filter(
            topic=lane.topic, lane_count=lane.count, lane_index__gte=lane.index, lane_index__lte=lane.index
        )
    if vendor == "mysql":  # MariaDB reads a one-value range on topic as a point and goes on to the next columns
        return rows.filter(topic__gte=lane.topic, topic__lte=lane.topic, lane_count=lane.count, lane_index=lane.index)
    return rows.filter(topic=lane.topic, lane_count=lane.count, lane_index=lane.index)  # SQLite takes the index


# The pending index's own order within one lane (see claim_query).
LANE_ORDER = ("topic", "lane_count", "lane_index", "id")


def any_pending(alias, only=None) -> bool:
    """Whether the lanes in ``only`` (or any lane) have a pending row: seeks in the pending index."""
    if only:
        return any(lane_rows(alias, parse_lane(name)).exists() for name in only)
    return next_lane_query(alias, None).first() is not None


class PendingRow(NamedTuple):
    """What the relay reads of a pending row: plain values, no model instance to build per row."""

    id: int
    event_id: uuid.UUID
    event_type: str
    topic: str
    lane_count: int
    lane_index: int
    event_key_field: str
    event_key: object
    payload: dict
    event_time: datetime
    minorversion: int
    source: str
    sourcehost: str
    sourcelib: str
    attempts: int
    next_attempt_at: datetime | None
    retry_later: bool | None  # next_attempt_at is still ahead by the database's clock (backoff)


def claim_query(alias, lane):
    """
    The lane's pending rows in id order (see the ordering ADR: never an id cursor), while no
    pending row of its topic was written with another number of lanes (see ``layout_barrier``).

    One column of the lane is matched as a one-value range (``lane_rows``) and the rows are
    ordered by the pending index's columns (``LANE_ORDER``): the same rows in the same order as
    equalities and ``ORDER BY id``, but only the pending index can produce that order. With
    equalities PostgreSQL sees ``ORDER BY id``, which the primary key gives too; once its
    statistics say many rows are pending, it walks the primary key from the lowest id, past every
    sent row, on every claim, and a 100k drain slowed fourfold from start to end. On PostgreSQL
    the range is on ``lane_index``, the last column before ``id``, so that the equalities before
    it still bound the seek (a range on ``topic``, as before lanes, read every lane of the topic).
    tests/test_indexes.py holds every database to the index.
    """
    return _claimable(alias, lane).values_list(*PendingRow._fields)


def _claimable(alias, name, below=None):
    """The lane's rows, below the id ``below``, or else while no other layout of the topic has a pending row."""
    lane = parse_lane(name)
    rows = lane_rows(alias, lane)
    if below is not None:
        rows = rows.filter(id__lt=below)
    else:
        rows = rows.filter(*[~Exists(other) for other in _other_layouts(alias, lane)])
    return rows.order_by(*LANE_ORDER).annotate(
        retry_later=ExpressionWrapper(Q(next_attempt_at__gt=Now()), output_field=BooleanField())
    )


def _other_layouts(alias, lane):
    """The topic's pending rows written with fewer lanes, and with more, than ``lane``: each a seek."""
    rows = _pending_of_topic(alias, lane.topic)
    return ([rows.filter(lane_count__lt=lane.count)] if lane.count > 1 else []) + [
        rows.filter(lane_count__gt=lane.count)
    ]


def layout_barrier(alias, name) -> int | None:
    """
    The lowest pending id of the lane's topic among rows written with another number of lanes,
    or ``None``: the lane publishes only its rows below it (ADR 22). While writers move from one
    number of lanes to another, a key's rows are in two lanes, one of each number; this keeps
    them in id order, as one lane would.
    """
    lane = parse_lane(name)
    others = lanes_of_topic(alias, lane.topic, count_below=lane.count, count_above=lane.count)
    firsts = [lane_rows(alias, other).order_by(*LANE_ORDER).values_list("id", flat=True).first() for other in others]
    firsts = [first for first in firsts if first is not None]
    return min(firsts) if firsts else None


def payload_size():
    """The length of a row's payload JSON text: stored at write time, measured only for rows from before 0008."""
    return Coalesce("payload_size", Length(Cast("payload", TextField())))


def pending_batch(alias, lane, limit, max_bytes=None) -> list:
    """
    The lane's first ``limit`` pending rows in id order, and with ``max_bytes`` no more than
    fit in that many bytes of payload (always at least one row, however large).

    One statement in the usual case: the claim returns every row's size, and the payload only
    of a row no larger than its share of the bound (``max_bytes / limit``), so what it carries
    is bounded however large the rows are. Rows within the bound whose payload it left out (large
    ones) are read by id in a second statement. Payloads of rows beyond the bound never leave
    the database: a batch of large events costs the relay ``max_bytes``, not ``limit`` times their size.
    """
    share = max_bytes // limit if max_bytes else None
    claimed = _claim(alias, lane, limit, share).run()
    if not claimed and (below := layout_barrier(alias, lane)) is not None:  # the lane waits for another layout's rows
        claimed = CompiledQuery(_claim_query(alias, lane, limit, share, below)).run()
    claimed = [_as_pending_row(row) for row in claimed]
    if not max_bytes:
        return [row for row, _ in claimed]
    _, count = leading_rows_within(((row.id, size) for row, size in claimed), max_bytes)
    left_out = {row.id for row, size in claimed[:count] if size > share}
    rows = [row for row, _ in claimed[:count]]
    return _with_payloads(alias, rows, left_out) if left_out else rows


# The claim's columns as Django 4.2 and 5.2 both return them: fields, then annotations (compiled.py).
_CLAIM_FIELDS = [name for name in PendingRow._fields if name not in ("payload", "retry_later")]


@lru_cache(maxsize=1024)
def _claim(alias, lane, limit, share) -> CompiledQuery:
    """The claim of ``limit`` rows, with sizes and the payloads within ``share`` bytes (all payloads if ``None``)."""
    return CompiledQuery(_claim_query(alias, lane, limit, share))


def _claim_query(alias, lane, limit, share, below=None):
    query = _claimable(alias, lane, below)
    if share is None:
        query = query.annotate(size=Value(None, output_field=IntegerField()), small_payload=F("payload"))
    else:
        query = query.annotate(size=payload_size()).annotate(
            small_payload=Case(When(size__lte=share, then=F("payload")), output_field=JSONField())
        )
    return query.values_list(*_CLAIM_FIELDS, "retry_later", "size", "small_payload")[:limit]


_PAYLOAD_AT = PendingRow._fields.index("payload")


def _as_pending_row(row) -> tuple:
    """``(PendingRow, size)`` from a row of ``_claim``: its payload put back in place, per row without a dict."""
    *fields, retry_later, size, payload = row
    return PendingRow(*fields[:_PAYLOAD_AT], payload, *fields[_PAYLOAD_AT:], retry_later), size


def _with_payloads(alias, rows, ids):
    """``rows`` with the payloads of ``ids`` read in; cut before a row no longer pending (requeued or purged)."""
    read = OutboxEvent.objects.using(alias).filter(id__in=ids).values_list("id", "status", "payload")
    payloads = {row_id: payload for row_id, status, payload in read if status == STATUS.pending}  # by the primary key
    complete = []
    for row in rows:
        if row.id in ids:
            if row.id not in payloads:
                break
            row = row._replace(payload=payloads[row.id])
        complete.append(row)
    return complete


def leading_rows_within(sizes, max_bytes):
    """The last id and the number of the leading ``(id, size)`` rows whose sizes total at most ``max_bytes``."""
    last_id, count, total = None, 0, 0
    for row_id, size in sizes:
        total += size or 0
        if count and total > max_bytes:
            break
        last_id, count = row_id, count + 1
    return last_id, count


def mark_sent(alias, deliveries, delete: bool, lease) -> int:
    """
    Record acknowledged rows: sent with partition and offset, or deleted. Returns how many.

    ``lease`` is ``leases.held(...)``: every statement writes only while the lane's lease is
    ours (fencing, ADR 2), so a relay that lost it marks nothing and the new holder re-sends.
    Each statement is atomic on its own and needs no surrounding transaction (which would
    cost two more round trips per batch). A crash between two chunks leaves the later one
    pending, to be re-sent in order: at least once, never out of order (ADR 1).
    """
    if not deliveries:
        return 0
    if delete:
        return OutboxEvent.objects.using(alias).filter(Exists(lease), id__in=[d.row_id for d in deliveries]).delete()[0]
    connection, marked = connections[alias], 0
    fence = _fence_sql(alias, lease)
    with connection.cursor() as cursor:
        for start in range(0, len(deliveries), MARK_CHUNK):
            cursor.execute(*_mark_sent_statement(connection, deliveries[start : start + MARK_CHUNK], fence))
            marked += cursor.rowcount
    return marked


def mark_published(alias, row_ids, delete: bool, lease) -> int:
    """
    Record rows that a lane's last Kafka transaction published, found still pending by the
    lane's next holder (ADR 20): sent (their partition and offset unknown), or deleted. Fenced
    like ``mark_sent``; rows no longer pending are left as they are. Returns how many.
    """
    marked = 0
    for start in range(0, len(row_ids), MARK_CHUNK):
        rows = OutboxEvent.objects.using(alias).filter(
            Exists(lease), id__in=row_ids[start : start + MARK_CHUNK], status=STATUS.pending
        )
        marked += rows.delete()[0] if delete else rows.update(status=STATUS.sent, sent_at=Now(), next_attempt_at=None)
    return marked


# Rows per UPDATE; also keeps SQLite under its 500-term compound SELECT limit.
MARK_CHUNK = 500


def _fence_sql(alias, lease):
    """``EXISTS (...)`` of the lease query, and the database's own clock, as SQL for a hand-written statement."""
    compiler = lease.values("lane").query.get_compiler(using=alias)
    lease_sql, lease_params = compiler.as_sql()
    now_sql, now_params = compiler.compile(Now())
    return f"EXISTS ({lease_sql})", list(lease_params), now_sql, list(now_params)


def _mark_sent_statement(connection, deliveries, fence):
    """
    One UPDATE joining the table to the (id, partition, offset) triples of a chunk, fenced by the lease.

    Django's ``bulk_update`` builds a CASE expression per row and per column, which made
    marking cost more than publishing; a join against a derived table is a single, cheap
    statement on every database. Each database spells the derived table its own way; on
    PostgreSQL the triples travel as three arrays (in their text form), so the statement text
    never changes and its plan is reused. The fence is a primary-key lookup of the lease row.
    """
    fence_sql, fence_params, now, now_params = fence
    quote, table = connection.ops.quote_name, connection.ops.quote_name(OutboxEvent._meta.db_table)
    if connection.vendor == "postgresql":
        acked, id_, p, o = (
            "unnest(%s::bigint[], %s::integer[], %s::bigint[]) AS acked (id, p, o)",
            "acked.id",
            "acked.p",
            "acked.o",
        )
        params = [
            _array_literal(d.row_id for d in deliveries),
            _array_literal(d.partition for d in deliveries),
            _array_literal(d.offset for d in deliveries),
        ]
    else:
        params = [value for d in deliveries for value in (d.row_id, d.partition, d.offset)]
    if connection.vendor == "mysql":
        acked = " UNION ALL ".join(["SELECT %s AS id, %s AS p, %s AS o"] * len(deliveries))
        assignments = (
            f"{table}.{quote('status')} = %s, {table}.{quote('sent_at')} = {now}, "
            f"{table}.{quote('next_attempt_at')} = NULL, {table}.{quote('partition')} = acked.p, "
            f"{table}.{quote('offset')} = acked.o"
        )
        return (
            f"UPDATE {table} JOIN ({acked}) AS acked ON {table}.{quote('id')} = acked.id SET {assignments} "
            f"WHERE {fence_sql}",
            params + [STATUS.sent] + now_params + fence_params,
        )
    if connection.vendor == "sqlite":  # SQLite names the columns of a VALUES table column1, column2, ...
        acked = f"(VALUES {', '.join(['(%s, %s, %s)'] * len(deliveries))}) AS acked"
        id_, p, o = "acked.column1", "acked.column2", "acked.column3"
    return (
        f"UPDATE {table} SET {quote('status')} = %s, {quote('sent_at')} = {now}, "
        f"{quote('next_attempt_at')} = NULL, {quote('partition')} = {p}, {quote('offset')} = {o} "
        f"FROM {acked} WHERE {table}.{quote('id')} = {id_} AND {fence_sql}",
        [STATUS.sent] + now_params + params + fence_params,
    )


def _array_literal(integers) -> str:
    """
    A PostgreSQL array of integers or ``None`` (Redis entries have no partition or offset) in
    its text form, ``{1,NULL,3}``: psycopg adapts a list at 1 to 2 µs an element.
    """
    return "{" + ",".join("NULL" if value is None else str(value) for value in integers) + "}"


def record_failure(alias, row_id, error, delay_seconds, max_attempts, dead_after_seconds, lease) -> str | None:
    """
    Count a permanent failure against the row; returns its new status (``pending`` or ``dead``).

    The row goes dead only after ``max_attempts`` attempts *and* ``dead_after_seconds`` since its
    first failure: a budget in time, not in attempts, is what outlasts a rolling deploy (ADR 3).
    ``None`` means the lane's lease (``leases.held(...)``) is no longer ours and nothing changed.
    """
    with transaction.atomic(using=alias):
        rows = OutboxEvent.objects.using(alias).filter(Exists(lease), id=row_id)
        counted = rows.update(
            attempts=F("attempts") + 1,
            last_error=str(error)[:10000],
            next_attempt_at=ExpressionWrapper(Now() + timedelta(seconds=delay_seconds), output_field=DateTimeField()),
            failing_since=Coalesce(F("failing_since"), Now()),
        )
        if not counted:
            return None
        budget_spent = ExpressionWrapper(Now() - timedelta(seconds=dead_after_seconds), output_field=DateTimeField())
        rows.filter(attempts__gte=max_attempts, failing_since__lte=budget_spent).update(
            status=STATUS.dead, next_attempt_at=None
        )
        return OutboxEvent.objects.using(alias).values_list("status", flat=True).get(id=row_id)
