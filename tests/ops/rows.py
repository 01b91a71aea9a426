"""Outbox rows written directly, for tests that need a row in a given state without the producer."""

import uuid

from django.utils import timezone

from edx_event_bus_outbox.models import OutboxEvent

# In every payload, so that a test can tell whether the payload reached a page.
PII_MARKER = "learner-pii@example.com"


def make_row(topic="lane-a", status="pending", event_type="org.openedx.test.v1", **fields):
    now = timezone.now()
    return OutboxEvent.objects.create(
        event_id=uuid.uuid4(),
        event_type=event_type,
        topic=topic,
        event_key_field="user.id",
        event_key=42,
        payload={"user": {"id": 42, "pii": {"email": PII_MARKER}}},
        event_time=now,
        source="s",
        sourcehost="h",
        sourcelib="1.0.0",
        status=status,
        **fields,
    )
