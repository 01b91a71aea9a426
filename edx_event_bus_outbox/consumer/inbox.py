"""Read, write and purge the consumer inbox (see ``models.ConsumerInboxEntry``)."""
from django.utils import timezone

from .. import conf
from ..batch_delete import delete_in_batches
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
    """Delete rows processed before ``cutoff``, ``batch_size`` per statement; returns how many."""
    old = ConsumerInboxEntry.objects.using(conf.database_alias()).filter(processed_at__lt=cutoff)
    return delete_in_batches(old, "processed_at", batch_size, progress=progress)
