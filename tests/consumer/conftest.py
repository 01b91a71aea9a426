"""Consumer test settings: short timeouts so the suite stays quick, and new groups read from the start."""

from pathlib import Path

import pytest
from django.conf import settings as django_settings

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def consumer_settings(settings):
    settings.EVENT_BUS_KAFKA_CONSUMER_POLL_TIMEOUT = 0.1
    settings.EVENT_BUS_KAFKA_CONSUMER_POLL_FAILURE_SLEEP = 0.1
    settings.EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG = {"auto.offset.reset": "earliest"}
    settings.EVENT_BUS_OUTBOX_CONSUMER_RETRY_BACKOFF_SECONDS = 0.01
    return settings


def pytest_collection_modifyitems(config, items):
    """
    The consumer's broker and registry outage tests touch no database, and restarting services
    takes most of a minute: they run in the SQLite pass of ``make test`` only.
    """
    if django_settings.DATABASE_KIND == "sqlite":
        return
    dropped = [
        item for item in items if "stack_restart" in item.keywords and HERE in Path(str(item.fspath)).resolve().parents
    ]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]
