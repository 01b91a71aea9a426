"""
The claim, with per-key order kept across the dead state
(docs/decisions/0011-per-key-order-and-the-dead-state.rst).

A pending row behind a dead row of its key is moved to ``held`` instead of being published.
It leaves the pending index, so held rows never fill a batch and other keys keep flowing.
"""

from django.db import transaction

from ..outbox.held import STATUS, first_dead_by_key, is_behind
from ..outbox.lanes import parse_lane
from ..outbox.models import OutboxEvent
from . import store


def ready_batch(alias, lane, limit, max_bytes=None, any_dead=None) -> list:
    """
    The lane's first ``limit`` pending rows in id order that no dead row of their key stands in front of.

    ``any_dead`` is whether the lane has a dead row, when the caller knows (see ``Relay._ready_rows``).
    """
    if any_dead is None:
        any_dead = has_dead(alias, lane)
    if not any_dead:
        return store.pending_batch(alias, lane, limit, max_bytes)  # the usual case: one cheap seek, no transaction
    while True:
        rows, held = _hold_behind_dead(alias, lane, limit, max_bytes)
        if rows or not held:
            return rows


def has_dead(alias, lane) -> bool:
    """Whether the lane's topic has a dead row: per-key order is kept across all of a topic's lanes."""
    return OutboxEvent.objects.using(alias).filter(status=STATUS.dead, topic=parse_lane(lane).topic).exists()


def _hold_behind_dead(alias, lane, limit, max_bytes):
    """
    Read a batch and hold its rows that are behind a dead row, in one transaction.

    The dead rows are locked first, so that a requeue cannot slip in between reading them and
    holding: it would release rows that this transaction then held again, with no dead row in
    front of them any more. With the lock, the batch either sees the requeued row pending (and
    publishes it first) or holds the rows behind it, which the requeue then releases. Once
    this commits, a requeue changes nothing for the batch: it holds no row of the requeued
    row's key newer than it.
    """
    with transaction.atomic(using=alias):
        first_dead = first_dead_by_key(alias, parse_lane(lane).topic, lock=True)
        rows = store.pending_batch(alias, lane, limit, max_bytes)
        behind = {row.id for row in rows if is_behind(row.id, row.event_key, first_dead)}
        if behind:
            OutboxEvent.objects.using(alias).filter(id__in=behind, status=STATUS.pending).update(status=STATUS.held)
    return [row for row in rows if row.id not in behind], behind
