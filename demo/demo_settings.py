"""
A small Open edX-like service: SQLite, openedx-events, and this package in outbox mode.

Kafka and registry addresses come from ``.stack/env`` (``make stack-up``).
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for line in (ROOT / ".stack" / "env").read_text().splitlines() if (ROOT / ".stack" / "env").exists() else []:
    name, sep, value = line.partition("=")
    if sep and not line.startswith("#"):
        os.environ.setdefault(name, value)

DEMO_DIR = Path(os.environ.get("OUTBOX_DEMO_DIR", ROOT / ".stack" / "demo"))
DEMO_DIR.mkdir(parents=True, exist_ok=True)
DEMO_TOPIC = os.environ.get("OUTBOX_DEMO_TOPIC", "demo-enrollments")
# "kafka" or "redis" (run_demo --sink): where the relay publishes and consume_events reads.
DEMO_SINK = os.environ.get("OUTBOX_DEMO_SINK", "kafka")

SECRET_KEY = "demo-only"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "openedx_events",
    "edx_event_bus_outbox",
    "demo_app",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(DEMO_DIR / "demo.sqlite3"),
        "OPTIONS": {"timeout": 30},
    }
}
EVENTS_SERVICE_NAME = "outbox-demo"

EVENT_BUS_PRODUCER = "edx_event_bus_outbox.create_producer"
EVENT_BUS_CONSUMER = "edx_event_bus_outbox.KafkaEventConsumer"
EVENT_BUS_PRODUCER_CONFIG = {
    "org.openedx.learning.course.enrollment.created.v1": {
        DEMO_TOPIC: {"event_key_field": "enrollment.course.course_key", "enabled": True},
    },
}
EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS = os.environ.get("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL = os.environ.get("EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL")
EVENT_BUS_KAFKA_AUDIT_LOGGING_ENABLED = False
EVENT_BUS_KAFKA_CONSUMER_POLL_TIMEOUT = 0.25
EVENT_BUS_OUTBOX_RELAY_POLL_INTERVAL = 0.2

# Redis Streams, as a Tutor site runs it: our relay writes, edx-event-bus-redis's consumer reads.
EVENT_BUS_OUTBOX_SINK = DEMO_SINK
EVENT_BUS_REDIS_CONNECTION_URL = os.environ.get("OUTBOX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
EVENT_BUS_REDIS_CONSUMER_POLL_TIMEOUT = 1
EVENT_BUS_REDIS_AUDIT_LOGGING_ENABLED = False
if DEMO_SINK == "redis":
    EVENT_BUS_CONSUMER = "edx_event_bus_redis.RedisEventConsumer"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"edx_event_bus_outbox": {"handlers": ["console"], "level": "WARNING"}},
}
