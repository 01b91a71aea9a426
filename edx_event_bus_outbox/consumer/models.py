"""The consumer inbox: which receiver already handled which event, per consumer group."""

from django.db import models


class ConsumerInboxEntry(models.Model):
    """
    One receiver that handled one event successfully for one consumer group -- or, while
    ``claimed_by`` is set, is being run by that consumer (a claim, taken before the receiver
    runs, so that two consumers holding the same message do not both run it).

    Only written when ``EVENT_BUS_OUTBOX_CONSUMER_DEDUPLICATE`` is on. A row per receiver (not
    per event) so that a receiver that succeeded is not called again when the event is
    re-delivered because *another* receiver failed. ``purge_consumer_inbox`` deletes old rows.
    """

    group_id = models.CharField(max_length=200)
    event_id = models.UUIDField()
    receiver = models.CharField(max_length=200, help_text="module.qualname of the receiver function")
    processed_at = models.DateTimeField(db_index=True)  # when done; while claimed, when claimed
    claimed_by = models.CharField(
        max_length=32, null=True, blank=True, help_text="the consumer running the receiver now; empty once it succeeded"
    )

    class Meta:
        app_label = "edx_event_bus_outbox"
        db_table = "edx_event_bus_outbox_consumer_inbox"
        constraints = [
            # Also the index of the per-message lookup (group_id, event_id).
            models.UniqueConstraint(fields=["group_id", "event_id", "receiver"], name="outbox_inbox_once"),
        ]

    def __str__(self):
        return f"{self.receiver} handled {self.event_id} for {self.group_id} at {self.processed_at}"
