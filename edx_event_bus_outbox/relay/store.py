"""
The relay's database side: read a lane's pending rows, then record what Kafka said.

Each function is one short statement or transaction; none is ever open while the relay
talks to Kafka.
"""
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..outbox.models import OutboxEvent

STATUS = OutboxEvent.STATUS


def pending_lanes(alias, only=None) -> list:
    """Lanes (topics) that have pending rows; an index scan on the pending index."""
    query = OutboxEvent.objects.using(alias).filter(status=STATUS.pending)
    if only:
        query = query.filter(topic__in=only)
    return sorted(query.values_list("topic", flat=True).distinct())


def any_pending(alias, only=None) -> bool:
    query = OutboxEvent.objects.using(alias).filter(status=STATUS.pending)
    if only:
        query = query.filter(topic__in=only)
    return query.exists()


def pending_batch(alias, lane, limit) -> list:
    """The lane's first ``limit`` pending rows in id order (see the ordering ADR: never an id cursor)."""
    return list(OutboxEvent.objects.using(alias).filter(topic=lane, status=STATUS.pending).order_by("id")[:limit])


def mark_sent(alias, deliveries, delete: bool):
    """Record acknowledged rows in one transaction: sent with partition and offset, or deleted."""
    if not deliveries:
        return
    ids = [d.row_id for d in deliveries]
    with transaction.atomic(using=alias):
        if delete:
            OutboxEvent.objects.using(alias).filter(id__in=ids).delete()
            return
        now = timezone.now()
        rows = [OutboxEvent(id=d.row_id, status=STATUS.sent, sent_at=now, partition=d.partition,
                            offset=d.offset, next_attempt_at=None) for d in deliveries]
        OutboxEvent.objects.using(alias).bulk_update(
            rows, ["status", "sent_at", "partition", "offset", "next_attempt_at"], batch_size=len(rows)
        )


def record_failure(alias, row_id, error, delay_seconds, max_attempts) -> str:
    """Count a permanent failure against the row; returns its new status (``pending`` or ``dead``)."""
    with transaction.atomic(using=alias):
        OutboxEvent.objects.using(alias).filter(id=row_id).update(
            attempts=F("attempts") + 1,
            last_error=str(error)[:10000],
            next_attempt_at=timezone.now() + timedelta(seconds=delay_seconds),
        )
        OutboxEvent.objects.using(alias).filter(id=row_id, attempts__gte=max_attempts).update(
            status=STATUS.dead, next_attempt_at=None,
        )
        return OutboxEvent.objects.using(alias).values_list("status", flat=True).get(id=row_id)
