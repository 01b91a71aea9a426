"""
Rows held behind a dead row of their key (docs/decisions/0011-per-key-order-and-the-dead-state.rst).

A row of key K in topic T is *behind* a dead row when a dead row of K in T has a lower id:
publishing it would make it K's last message, and the dead row, once requeued, would land
after it. Such a row is ``held``; requeueing the dead row puts it back to ``pending``. Keys
are JSON values compared canonically, so two spellings of one key are one key.
"""

import json

from django.db import connections, transaction

from .models import OutboxEvent

STATUS = OutboxEvent.STATUS
RELEASE_CHUNK = 500


def canonical_key(key) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def _dead(alias, topic, lock) -> list:
    """The topic's dead rows as ``(id, event_key)``; ``lock`` locks them against a requeue or a claim."""
    dead = OutboxEvent.objects.using(alias).filter(status=STATUS.dead, topic=topic).order_by("id")
    if not lock or not connections[alias].features.has_select_for_update:  # SQLite: one writer at a time
        return list(dead.values_list("id", "event_key"))
    # Locked through the primary key alone, in id order, by the claim and by a requeue alike.
    # Through a secondary index, InnoDB would lock its entries first and the row after, and a
    # requeue updating the row's status (hence those entries) would deadlock with the claim.
    ids = list(dead.values_list("id", flat=True))
    locked = (
        OutboxEvent.objects.using(alias)
        .filter(id__in=ids)
        .order_by("id")
        .select_for_update()
        .values_list("id", "status", "event_key")
    )
    return [(row_id, key) for row_id, status, key in locked if status == STATUS.dead]


def lock_dead(alias, topic):
    """Lock the topic's dead rows, as the relay's claim does, before a requeue changes any of them."""
    _dead(alias, topic, lock=True)


def first_dead_by_key(alias, topic, lock=False) -> dict:
    """``{canonical key: lowest dead id}`` of the topic; ``lock`` locks those rows against a requeue."""
    first = {}
    for row_id, key in _dead(alias, topic, lock):
        key = canonical_key(key)
        first[key] = min(row_id, first.get(key, row_id))
    return first


def is_behind(row_id, key, first_dead) -> bool:
    first = first_dead.get(canonical_key(key))
    return first is not None and row_id > first


def release_held(alias, topic) -> int:
    """
    Held rows of the topic that no dead row stands in front of any more, back to ``pending``.

    Run inside the transaction that requeued (or after an operator deleted) the dead rows: the
    locks taken here and by the relay's claim (``relay/holding.py``) keep the two from crossing.
    """
    with transaction.atomic(using=alias):
        first_dead = first_dead_by_key(alias, topic, lock=True)
        held = (
            OutboxEvent.objects.using(alias)
            .filter(status=STATUS.held, topic=topic)
            .select_for_update()
            .values_list("id", "event_key")
        )
        free = [row_id for row_id, key in held if not is_behind(row_id, key, first_dead)]
        released = 0
        for start in range(0, len(free), RELEASE_CHUNK):
            released += (
                OutboxEvent.objects.using(alias)
                .filter(id__in=free[start : start + RELEASE_CHUNK], status=STATUS.held)
                .update(status=STATUS.pending)
            )
        return released
