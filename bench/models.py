"""
``PlainRow``: the baseline (b) of the write-path benchmark, a plain Django model with the same
columns and types as ``OutboxEvent`` (so a row is the same size), but only a primary key: no
unique constraint, no secondary index, no trigger.

The ``bench`` app has no migrations; ``migrate --run-syncdb`` creates its table.
"""

import uuid

from django.db import models
from django.utils import timezone


class PlainRow(models.Model):
    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(default=uuid.uuid4)
    event_type = models.CharField(max_length=255)
    topic = models.CharField(max_length=255)
    event_key_field = models.CharField(max_length=255)
    event_key = models.JSONField()
    payload = models.JSONField()
    event_time = models.DateTimeField()
    minorversion = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=255)
    sourcehost = models.CharField(max_length=255)
    sourcelib = models.CharField(max_length=64)
    status = models.CharField(max_length=100, default="pending")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    partition = models.IntegerField(null=True, blank=True)
    offset = models.BigIntegerField(null=True, blank=True)

    class Meta:
        app_label = "bench"
        db_table = "bench_plain_row"
