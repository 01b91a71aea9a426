"""Read, write and purge the consumer inbox (see ``models.ConsumerInboxEntry``)."""
from django.utils import timezone

from .. import conf
from .models import ConsumerInboxEntry


def handled_receivers(group_id: str, event_id) -> set:
    """Names of the receivers that already handled this event for this group."""
    return set(
        ConsumerInboxEntry.objects.using(conf.database_alias())
        .filter(group_id=group_id, event_id=event_id)
        .values_list("receiver", flat=True)
    )


def record(group_id: str, event_id, receiver_names) -> None:
    """Remember receivers that succeeded; a row already there (a concurrent replay) is fine."""
    now = timezone.now()
    ConsumerInboxEntry.objects.using(conf.database_alias()).bulk_create(
        [ConsumerInboxEntry(group_id=group_id, event_id=event_id, receiver=name, processed_at=now)
         for name in receiver_names],
        ignore_conflicts=True,
    )


def purge(cutoff, batch_size: int, progress=None) -> int:
    """Delete rows processed before ``cutoff``, ``batch_size`` per transaction; returns how many."""
    alias = conf.database_alias()
    old = ConsumerInboxEntry.objects.using(alias).filter(processed_at__lt=cutoff)
    removed = 0
    while True:
        # Ids first: MySQL cannot DELETE ... LIMIT through a subquery on the same table.
        ids = list(old.order_by("processed_at").values_list("id", flat=True)[:batch_size])
        if not ids:
            return removed
        removed += ConsumerInboxEntry.objects.using(alias).filter(id__in=ids).delete()[0]
        if progress:
            progress(removed)
