"""
Django settings for the test suite.

The database comes from ``OUTBOX_TEST_DB`` (``sqlite``, ``postgres`` or ``mysql``); server
URLs come from the environment or from ``.stack/env`` written by ``make stack-up``.
"""

import json
import os
import tempfile
from urllib.parse import urlparse

from tests.stack_env import load_stack_env

# `make test-unit` (OUTBOX_TEST_UNIT=1): SQLite only, and every service URL points at a closed
# port, so that a test which reaches for the stack fails there even while the stack runs.
UNIT = os.environ.get("OUTBOX_TEST_UNIT") == "1"
if UNIT:
    os.environ.update(
        {
            "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
            "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL": "http://127.0.0.1:1",
            "OUTBOX_TEST_POSTGRES_URL": "postgres://outbox:outbox@127.0.0.1:1/outbox",
            "OUTBOX_TEST_MYSQL_URL": "mysql://outbox:outbox@127.0.0.1:1/outbox",
            "OUTBOX_TEST_REDIS_URL": "redis://127.0.0.1:1/0",
        }
    )
else:
    load_stack_env()


def _server_database(url_variable, engine, **extra):
    url = urlparse(os.environ.get(url_variable, ""))
    return {
        "ENGINE": engine,
        "NAME": url.path.lstrip("/") or "outbox",
        "USER": url.username or "",
        "PASSWORD": url.password or "",
        "HOST": url.hostname or "127.0.0.1",
        "PORT": str(url.port or ""),
        **extra,
    }


DATABASE_KIND = os.environ.get("OUTBOX_TEST_DB", "sqlite")
if UNIT and DATABASE_KIND != "sqlite":
    raise RuntimeError(f"OUTBOX_TEST_UNIT=1 runs on SQLite only, not OUTBOX_TEST_DB={DATABASE_KIND!r}")
if DATABASE_KIND == "postgres":
    DEFAULT_DATABASE = _server_database("OUTBOX_TEST_POSTGRES_URL", "django.db.backends.postgresql")
elif DATABASE_KIND == "mysql":
    DEFAULT_DATABASE = _server_database(
        "OUTBOX_TEST_MYSQL_URL",
        "django.db.backends.mysql",
        OPTIONS={"charset": "utf8mb4", "isolation_level": "read committed"},
        TEST={"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
    )
elif DATABASE_KIND == "sqlite":
    # A file, not :memory:, so that a relay or consumer subprocess can open the same database.
    DEFAULT_DATABASE = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(tempfile.gettempdir(), "edx-event-bus-outbox.sqlite3"),
        "TEST": {"NAME": os.path.join(tempfile.gettempdir(), f"edx-event-bus-outbox-test-{os.getpid()}.sqlite3")},
        "OPTIONS": {"timeout": 30},
    }
else:
    raise RuntimeError(f"OUTBOX_TEST_DB={DATABASE_KIND!r}; use sqlite, postgres or mysql")

# One test database per pytest process, so that two suites can share the stack's servers.
if DATABASE_KIND != "sqlite":
    DEFAULT_DATABASE["TEST"] = {**DEFAULT_DATABASE.get("TEST", {}), "NAME": f"test_outbox_{os.getpid()}"}

# A second database on the same server, for EVENT_BUS_OUTBOX_DATABASE set to another alias
# (tests/test_outbox_database.py); pytest-django creates it only for the tests that ask for it.
OTHER_DATABASE = {**DEFAULT_DATABASE, "TEST": dict(DEFAULT_DATABASE.get("TEST", {}))}
if DATABASE_KIND == "sqlite":
    OTHER_DATABASE["NAME"] = os.path.join(tempfile.gettempdir(), "edx-event-bus-outbox-other.sqlite3")
    OTHER_DATABASE["TEST"]["NAME"] = os.path.join(
        tempfile.gettempdir(), f"edx-event-bus-outbox-other-test-{os.getpid()}.sqlite3"
    )
else:
    OTHER_DATABASE["TEST"]["NAME"] = f"test_outbox_other_{os.getpid()}"

# A subprocess started by a test (relay, consumer) must use the test database its parent created.
if os.environ.get("OUTBOX_TEST_DB_NAME"):
    DEFAULT_DATABASE["NAME"] = os.environ["OUTBOX_TEST_DB_NAME"]

DATABASES = {"default": DEFAULT_DATABASE, "other": OTHER_DATABASE}

SECRET_KEY = "tests-only"
# The admin tests log in real users; the default hasher's million rounds cost a second each.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "tests.urls"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "openedx_events",
    "edx_event_bus_outbox",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

EVENTS_SERVICE_NAME = "outbox-tests"
EVENT_BUS_PRODUCER = "edx_event_bus_outbox.create_producer"
EVENT_BUS_CONSUMER = "edx_event_bus_outbox.KafkaEventConsumer"
EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS = os.environ.get("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS")
EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL = os.environ.get("EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL")
EVENT_BUS_PRODUCER_CONFIG = {}
# The test's own, when a relay process is started by a test (the ``topic`` fixture sets it).
EVENT_BUS_OUTBOX_RELAY_TRANSACTIONS_TOPIC = os.environ.get(
    "OUTBOX_TEST_TRANSACTIONS_TOPIC", "outbox-relay-transactions"
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"edx_event_bus_outbox": {"handlers": ["console"], "level": "INFO"}},
}

# Overrides for a relay or consumer subprocess, as JSON (see tests/metrics_tools.py).
globals().update(json.loads(os.environ.get("OUTBOX_TEST_SETTINGS", "{}")))
