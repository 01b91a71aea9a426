"""Delete many rows without a long lock: bounded batches, each its own short statement."""

import time


def delete_in_batches(queryset, order_by: str, batch_size: int, pause: float = 0.0, progress=None) -> int:
    """
    Delete every row of ``queryset``, oldest (by ``order_by``) first; returns how many.

    Ids are selected first because MySQL cannot ``DELETE ... LIMIT`` through a subquery on
    the same table. ``progress(removed_so_far)`` is called after each batch; ``pause``
    seconds between batches let replicas and autovacuum keep up.
    """
    model, alias = queryset.model, queryset.db
    removed = 0
    while True:
        ids = list(queryset.order_by(order_by).values_list("pk", flat=True)[:batch_size])
        if not ids:
            return removed
        removed += model.objects.using(alias).filter(pk__in=ids).delete()[0]
        if progress:
            progress(removed)
        if pause:
            time.sleep(pause)
