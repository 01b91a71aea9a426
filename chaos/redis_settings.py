"""
The test settings with every topic sent to Redis Streams, for ``chaos.run --sink redis``: the
run's own ``redis-server`` (``CHAOS_REDIS_URL``), and no trimming that could hide a lost event.
"""

import os

from tests.settings import *  # noqa: F401,F403

EVENT_BUS_OUTBOX_SINK = "redis"
EVENT_BUS_REDIS_CONNECTION_URL = os.environ["CHAOS_REDIS_URL"]
EVENT_BUS_REDIS_STREAM_MAX_LEN = 10_000_000
