"""
Settings for the consumer subprocesses the tests start (``manage.py consume_events``).

They are ``tests.settings`` plus the journaling receiver of ``tests.consumer.recorder``, short
poll timeouts, and any overrides the test passes as JSON in ``OUTBOX_TEST_SETTINGS``.
"""

import json
import os

from tests.settings import *  # noqa: F401,F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.consumer.recorder.RecorderConfig"]
EVENT_BUS_KAFKA_CONSUMER_POLL_TIMEOUT = 0.1
EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG = {"auto.offset.reset": "earliest"}
globals().update(json.loads(os.environ.get("OUTBOX_TEST_SETTINGS", "{}")))
