"""
The outbox table.

A row is broker-neutral data: everything the relay needs to rebuild the exact Kafka message
(topic, Avro-ready key and payload, CloudEvents metadata) without querying application data,
plus the relay's bookkeeping.
"""

from django.db import models
from django.db.models import Q
from model_utils import Choices
from model_utils.fields import AutoCreatedField, StatusField
from openedx_events.data import EventsMetadata

from ..kafka.headers import version_tuple

PENDING_LANE_INDEX = "outbox_pending_lanes_idx"


class OutboxEvent(models.Model):
    """One event waiting for, or done with, publication to Kafka."""

    # ``held``: waits behind a dead row of its key (docs/decisions/0011-per-key-order-and-the-dead-state.rst).
    STATUS = Choices(("pending", "Pending"), ("sent", "Sent"), ("dead", "Dead"), ("held", "Held"))

    id = models.BigAutoField(primary_key=True)
    # What the message is: enough to rebuild key, value and headers byte for byte.
    event_id = models.UUIDField(help_text="ce_id header; unique per topic (one event may go to several topics)")
    event_type = models.CharField(max_length=255, help_text="ce_type header, e.g. org.openedx...v1")
    topic = models.CharField(max_length=255, help_text="Un-prefixed topic")
    # The row's lane among its topic's (outbox/lanes.py, ADR 22), fixed when it is written.
    lane_count = models.PositiveSmallIntegerField(default=1, help_text="Lanes its topic had when it was written")
    lane_index = models.PositiveSmallIntegerField(default=0, help_text="Its lane: its key's hash modulo lane_count")
    event_key_field = models.CharField(max_length=255)
    event_key = models.JSONField(help_text="Avro-ready key, from the event data at event_key_field")
    payload = models.JSONField(help_text="Avro-ready event data (AvroSignalSerializer.to_dict); may hold PII")
    # Read by the relay's byte bound, which must not turn every payload back into text to learn it.
    payload_size = models.IntegerField(
        null=True, blank=True, help_text="Characters of the payload's JSON text as written; null on older rows"
    )
    event_time = models.DateTimeField(help_text="ce_time header")
    minorversion = models.PositiveIntegerField(default=0, help_text="ce_minorversion header")
    source = models.CharField(max_length=255, help_text="ce_source header")
    sourcehost = models.CharField(max_length=255)
    sourcelib = models.CharField(max_length=64, help_text="openedx-events version, dotted")

    # The relay's bookkeeping.
    status = StatusField(db_index=False)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True, help_text="First failure of its own (ADR 3)")
    # Not indexed: only the admin's date filter and replay's time bounds select by it (ADR 23).
    created = AutoCreatedField(help_text="When send() wrote it; not indexed (ADR 23)")
    sent_at = models.DateTimeField(null=True, blank=True)
    partition = models.IntegerField(null=True, blank=True)
    offset = models.BigIntegerField(null=True, blank=True)

    class Meta:
        app_label = "edx_event_bus_outbox"
        db_table = "edx_event_bus_outbox_event"
        constraints = [
            models.UniqueConstraint(fields=["event_id", "topic"], name="outbox_event_id_topic_uniq"),
        ]
        indexes = [
            # Claiming scans "pending rows of one lane, in id order". A partial index keeps it
            # as small as the backlog on PostgreSQL and SQLite; MySQL/MariaDB cannot do partial
            # indexes, so migration 0010 adds (status, topic, lane_count, lane_index, id) there instead.
            models.Index(
                fields=["topic", "lane_count", "lane_index", "id"],
                condition=Q(status="pending"),
                name=PENDING_LANE_INDEX,
            ),
            models.Index(fields=["status", "sent_at"], name="outbox_status_sent_idx"),
        ]
        permissions = [
            ("view_outboxevent_payload", "Can view outbox event payloads (may contain PII)"),
            ("requeue_outboxevent", "Can requeue dead outbox events"),
        ]

    def __str__(self):
        return f"{self.event_type} {self.event_id} ({self.status})"

    @property
    def metadata(self) -> EventsMetadata:
        """The ``EventsMetadata`` the event was sent with, rebuilt from the row."""
        return EventsMetadata(
            event_type=self.event_type,
            id=self.event_id,
            minorversion=self.minorversion,
            source=self.source,
            sourcehost=self.sourcehost,
            time=self.event_time,
            sourcelib=version_tuple(self.sourcelib),
        )
