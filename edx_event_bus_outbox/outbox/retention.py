"""Retention of sent rows (docs/decisions/0005-retention.rst)."""

from .. import conf
from ..batch_delete import delete_in_batches
from .models import OutboxEvent


def purge_sent(cutoff, batch_size, pause=0.0, progress=None) -> int:
    """Delete ``sent`` rows sent before ``cutoff``; pending and dead rows are never touched."""
    sent = OutboxEvent.objects.using(conf.database_alias()).filter(status=OutboxEvent.STATUS.sent, sent_at__lt=cutoff)
    return delete_in_batches(sent, "sent_at", batch_size, pause, progress)
