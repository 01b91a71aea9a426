"""Dead rows back to pending, after their cause was fixed: used by ``requeue_outbox`` and the admin."""

from django.db import transaction

from .. import conf
from .held import lock_dead, release_held
from .models import OutboxEvent


def dead_rows(*, ids=None, event_type=None, topic=None):
    """Dead rows narrowed by every criterion given; all dead rows when none is."""
    rows = OutboxEvent.objects.using(conf.database_alias()).filter(status=OutboxEvent.STATUS.dead)
    if ids:
        rows = rows.filter(id__in=ids)
    if event_type:
        rows = rows.filter(event_type=event_type)
    if topic:
        rows = rows.filter(topic=topic)
    return rows


def requeue(rows) -> int:
    """
    Pending again, from a clean slate, with the rows held behind them (ADR 11), which follow them
    in id order; ``last_error`` stays for the record until the next failure.
    """
    alias = conf.database_alias()
    with transaction.atomic(using=alias):
        dead = rows.filter(status=OutboxEvent.STATUS.dead)
        topics = sorted(set(dead.values_list("topic", flat=True)))
        for topic in topics:
            lock_dead(alias, topic)
        count = dead.update(status=OutboxEvent.STATUS.pending, attempts=0, next_attempt_at=None, failing_since=None)
        for topic in topics:
            release_held(alias, topic)
    return count
