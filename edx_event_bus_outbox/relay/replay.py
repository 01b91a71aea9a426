"""
Replay sent outbox rows: publish them again, exactly as the relay first published them
(docs/decisions/0018-replay-from-the-outbox.rst).

A replay only reads. It changes no row, takes no lease and never reads a pending row, so it can
run beside the relays. It walks the selection in id order with a keyset cursor (``id > cursor``
on the primary key, never OFFSET), in batches bounded in rows and in bytes like the relay's, and
publishes each batch and waits for its acknowledgements before reading the next: a topic's
events, and so each key's, go out in their original order.
"""

import time
from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from django.db.models import Count, Max, Min, Q

from .. import conf
from ..exceptions import ReplaySelectionError, ReplayStopped
from ..outbox.models import OutboxEvent
from .store import PendingRow, leading_rows_within, payload_size
from .topic_sinks import TopicSinks

PROGRESS_EVERY_SECONDS = 2.0


def parse_time(option, value) -> datetime:
    """An ISO-8601 timestamp with its timezone: a naive one would be read in a clock nobody chose."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ReplaySelectionError(
            f"{option} {value!r} is not an ISO-8601 timestamp; use e.g. 2026-12-01T09:30:00+00:00."
        ) from None
    if parsed.tzinfo is None:
        raise ReplaySelectionError(f"{option} {value!r} has no timezone; write it as e.g. {value}+00:00 or {value}Z.")
    return parsed


@dataclass(frozen=True)
class Selection:
    """
    The sent rows to replay: created in ``[since, until)``, of these topics and event types
    (none given: all). ``everything`` must be asked for, so that a forgotten bound is an error.
    """

    since: datetime | None = None
    until: datetime | None = None
    topics: tuple = ()
    event_types: tuple = ()
    everything: bool = False

    def __post_init__(self):
        if self.everything == (self.since is not None or self.until is not None):
            raise ReplaySelectionError(
                "Give --since and/or --until, or --all to replay every sent row the outbox still holds (not both)."
            )
        for option, moment in (("--since", self.since), ("--until", self.until)):
            if moment is not None and moment.tzinfo is None:
                raise ReplaySelectionError(f"{option} needs a timezone, not the naive {moment.isoformat()}.")
        if self.since and self.until and self.since >= self.until:
            raise ReplaySelectionError(
                f"--since ({self.since.isoformat()}) must be before --until ({self.until.isoformat()})."
            )
        for topic in self.topics:
            if not conf.TOPIC_NAME.fullmatch(topic):
                raise ReplaySelectionError(f"--topic {topic!r} is not a topic name (letters, digits, '.', '_', '-').")

    def rows(self, alias):
        rows = OutboxEvent.objects.using(alias).filter(status=OutboxEvent.STATUS.sent)
        if self.since is not None:
            rows = rows.filter(created__gte=self.since)
        if self.until is not None:
            rows = rows.filter(created__lt=self.until)
        if self.topics:
            rows = rows.filter(topic__in=self.topics)
        if self.event_types:
            rows = rows.filter(event_type__in=self.event_types)
        return rows


class Group(NamedTuple):
    """The rows of one (topic, event type) that a replay will publish."""

    topic: str
    event_type: str
    events: int
    first_id: int
    last_id: int
    first_created: datetime
    last_created: datetime


class Plan(NamedTuple):
    """What a replay will publish, as counted before it starts; ``groups`` in (topic, event type) order."""

    groups: list

    @property
    def total(self):
        return sum(group.events for group in self.groups)

    @property
    def first_id(self):
        return min(group.first_id for group in self.groups)

    @property
    def last_id(self):
        return max(group.last_id for group in self.groups)


def plan_replay(selection: Selection, *, after_id=None, alias=None) -> Plan:
    """
    Count the selection per topic and event type (the rows after ``after_id``), in one pass.

    A topic or event type asked for that has no row in the selection, even before ``after_id``
    (so that resuming never trips on it), is a typo or a wrong range: refused, naming what is there.
    """
    alias = alias or conf.database_alias()
    ahead = Q(id__gt=after_id) if after_id is not None else None
    found = list(
        selection.rows(alias)
        .order_by()
        .values("topic", "event_type")
        .annotate(
            events=Count("id", filter=ahead),
            first_id=Min("id", filter=ahead),
            last_id=Max("id", filter=ahead),
            first_created=Min("created", filter=ahead),
            last_created=Max("created", filter=ahead),
        )
        .order_by("topic", "event_type")
    )
    _refuse_unknown(selection, "topic", {group["topic"] for group in found}, alias)
    _refuse_unknown(selection, "event_type", {group["event_type"] for group in found}, alias)
    return Plan([Group(**group) for group in found if group["events"]])


def _refuse_unknown(selection, field, found, alias):
    missing = sorted(set(getattr(selection, f"{field}s")) - found)
    if not missing:
        return
    in_range = Selection(selection.since, selection.until, everything=selection.everything).rows(alias)
    present = sorted(in_range.order_by(field).values_list(field, flat=True).distinct())
    raise ReplaySelectionError(
        f"--{field.replace('_', '-')} {', '.join(map(repr, missing))}: no sent row of the selection has it "
        f"(sent rows in the time range have: {', '.join(present) or 'nothing'}). Topics are un-prefixed (without "
        "EVENT_BUS_TOPIC_PREFIX); sent rows older than the retention period are purged."
    )


def last_id_within(selection: Selection, plan: Plan, after_id, limit, *, step=10_000, alias=None):
    """The id of the ``limit``-th row to replay (for the dry run), walking ids in keyset steps, never OFFSET."""
    alias = alias or conf.database_alias()
    window = selection.rows(alias).filter(id__lte=plan.last_id).order_by("id").values_list("id", flat=True)
    cursor = max(after_id or 0, plan.first_id - 1)
    while limit > 0:
        ids = list(window.filter(id__gt=cursor)[: min(limit, step)])
        if not ids:
            break
        cursor, limit = ids[-1], limit - len(ids)
    return cursor


# What a sink reads of a row to rebuild its message: the relay's ``PendingRow`` less its bookkeeping.
SentRow = namedtuple("SentRow", PendingRow._fields[: PendingRow._fields.index("attempts")])


class Progress(NamedTuple):
    done: int
    total: int
    last_id: int | None  # every selected row up to this id was published
    seconds: float

    @property
    def rate(self):
        return self.done / self.seconds if self.seconds > 0 else 0.0


def replay(
    selection: Selection,
    *,
    after_id=None,
    limit=None,
    batch_size=None,
    batch_max_bytes=None,
    progress=None,
    stopping=None,
    alias=None,
) -> Progress:
    """
    Publish the selection again, in id order, and return how far it got.

    ``progress(Progress)`` is called every ``PROGRESS_EVERY_SECONDS`` and at the end. The
    selection is bounded at its last id as counted when the replay starts, so rows sent later
    are left to the relay. ``stopping`` (a ``threading.Event``) ends the replay between
    batches. Raises ``ReplayStopped`` with the id to resume after when the broker does not
    acknowledge an event (or ``stopping`` was set).
    """
    alias = alias or conf.database_alias()
    batch_size = batch_size or conf.relay_batch_size()
    batch_max_bytes = batch_max_bytes or conf.relay_batch_max_bytes()
    plan = plan_replay(selection, after_id=after_id, alias=alias)
    total = plan.total if limit is None else min(limit, plan.total)
    started = time.monotonic()
    if not total:
        return Progress(0, 0, after_id, 0.0)
    cursor, done, reported = max(after_id or 0, plan.first_id - 1), 0, started
    sinks = TopicSinks(conf.relay_lease_seconds())

    def so_far():
        return Progress(done, total, cursor, time.monotonic() - started)

    try:
        while limit is None or done < limit:
            if stopping is not None and stopping.is_set():
                raise ReplayStopped(
                    done=done, total=total, resume_after_id=cursor, cause="interrupted (SIGINT or SIGTERM)"
                )
            size = batch_size if limit is None else min(batch_size, limit - done)
            rows = _next_batch(selection.rows(alias), cursor, plan.last_id, size, batch_max_bytes)
            if not rows:
                break
            published, cause = _publish(rows, sinks)
            if not published:
                raise ReplayStopped(done=done, total=total, resume_after_id=cursor, cause=cause)
            cursor, done = rows[published - 1].id, done + published  # a failed row is retried first next time
            if progress and time.monotonic() - reported >= PROGRESS_EVERY_SECONDS:
                progress(so_far())
                reported = time.monotonic()
    finally:
        sinks.close()
    if progress:
        progress(so_far())
    return so_far()


def _next_batch(rows, cursor, last_id, limit, max_bytes) -> list:
    """The next ``limit`` rows after ``cursor``, up to ``last_id``, within ``max_bytes`` of payload (at least one)."""
    window = rows.filter(id__gt=cursor, id__lte=last_id).order_by("id")
    sizes = window.annotate(size=payload_size()).values_list("id", "size")[:limit]
    through, count = leading_rows_within(sizes, max_bytes)
    if not count:
        return []
    return [SentRow(*row) for row in window.filter(id__lte=through).values_list(*SentRow._fields)[:count]]


def _publish(rows, sinks) -> tuple:
    """
    Publish ``rows`` through their topics' sinks; returns how many leading rows (in id order) were
    acknowledged, and what stopped the first one that was not (``None`` if all were).
    """
    by_sink = {}
    for row in rows:
        sink = sinks.sink(row.topic)
        by_sink.setdefault(id(sink), (sink, []))[1].append(row)
    acknowledged, errors = set(), {}
    for sink, its_rows in by_sink.values():
        for delivery in sink.publish(its_rows):
            if delivery.error is None:
                acknowledged.add(delivery.row_id)
            else:
                errors[delivery.row_id] = delivery.error
    for index, row in enumerate(rows):
        if row.id not in acknowledged:  # a sink leaves out the rows after its first failure: find that one
            failed = next((later for later in rows[index:] if later.id in errors), row)
            return index, _describe(failed, errors.get(failed.id, "no delivery report"))
    return len(rows), None


def _describe(row, error):
    """The failure as an operator may read it: ids and the error's log text, never the payload."""
    text = getattr(error, "log_text", None) or str(error)
    return f"event {row.event_id} (row {row.id}, topic {row.topic!r}) was not acknowledged: {text}"
