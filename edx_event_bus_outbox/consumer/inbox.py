"""
Read, write and purge the consumer inbox (see ``models.ConsumerInboxEntry``).

A receiver's row is first a *claim* (``claimed_by`` = the consumer's token), taken before the
receiver runs, then *done* (``claimed_by`` empty) once it succeeded; a failed receiver's claim
is deleted. Each step is one statement in autocommit, atomic on every database, so of two
consumers holding the same message only one holds a receiver's claim. See ADR 12.
"""

from datetime import timedelta

from django.utils import timezone

from .. import conf
from ..batch_delete import delete_in_batches
from .models import ConsumerInboxEntry


def _rows(group_id: str, event_id):
    return ConsumerInboxEntry.objects.using(conf.database_alias()).filter(group_id=group_id, event_id=event_id)


def handled_receivers(group_id: str, event_id) -> set:
    """Ids of the receivers that already handled this event for this group."""
    return set(_rows(group_id, event_id).filter(claimed_by__isnull=True).values_list("receiver", flat=True))


def claim(group_id: str, event_id, receiver_ids, token: str, stale_after: float) -> set:
    """
    Claim ``receiver_ids`` for the consumer ``token``; returns those it now holds. A receiver
    that is done, or claimed by another consumer less than ``stale_after`` seconds ago, is not
    returned. An older claim (its consumer died, or was evicted and never came back) is taken over.
    """
    now = timezone.now()
    ConsumerInboxEntry.objects.using(conf.database_alias()).bulk_create(
        [
            ConsumerInboxEntry(
                group_id=group_id, event_id=event_id, receiver=receiver, processed_at=now, claimed_by=token
            )
            for receiver in receiver_ids
        ],
        ignore_conflicts=True,
    )
    rows = _rows(group_id, event_id).filter(receiver__in=list(receiver_ids))
    # The WHERE is re-checked on the locked row, so of two consumers taking over one claim only one does.
    rows.filter(claimed_by__isnull=False, processed_at__lt=now - timedelta(seconds=stale_after)).exclude(
        claimed_by=token
    ).update(claimed_by=token, processed_at=now)
    return set(rows.filter(claimed_by=token).values_list("receiver", flat=True))


def record(group_id: str, event_id, receiver_ids) -> None:
    """Receivers that succeeded: done, whoever held their claims; a row missing is written."""
    now = timezone.now()
    updated = (
        _rows(group_id, event_id).filter(receiver__in=list(receiver_ids)).update(claimed_by=None, processed_at=now)
    )
    if updated == len(receiver_ids):
        return
    ConsumerInboxEntry.objects.using(conf.database_alias()).bulk_create(
        [
            ConsumerInboxEntry(group_id=group_id, event_id=event_id, receiver=receiver, processed_at=now)
            for receiver in receiver_ids
        ],
        ignore_conflicts=True,
    )


def release(group_id: str, event_id, receiver_ids, token: str) -> None:
    """Give up this consumer's claims (the receivers failed), so that a re-delivery can run them."""
    _rows(group_id, event_id).filter(receiver__in=list(receiver_ids), claimed_by=token).delete()


def purge(cutoff, batch_size: int, progress=None) -> int:
    """Delete rows processed before ``cutoff``, ``batch_size`` per statement; returns how many."""
    old = ConsumerInboxEntry.objects.using(conf.database_alias()).filter(processed_at__lt=cutoff)
    return delete_in_batches(old, "processed_at", batch_size, progress=progress)
