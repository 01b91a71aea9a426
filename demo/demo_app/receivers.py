"""
The consuming side of the demo: a receiver that appends what it got to a JSON-lines file.

It runs inside ``consume_events``; only events that came from the bus are recorded.
"""

import json
import os
import time

from django.conf import settings
from django.dispatch import receiver
from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED


@receiver(COURSE_ENROLLMENT_CREATED)
def record_received(metadata, from_event_bus=False, **kwargs):
    if not from_event_bus:
        return
    with open(settings.DEMO_DIR / "received.jsonl", "a", encoding="utf-8") as received:
        received.write(json.dumps({"id": str(metadata.id), "at": time.time(), "pid": os.getpid()}) + "\n")
