"""Consumer test settings: short timeouts so the suite stays quick, and new groups read from the start."""
import pytest


@pytest.fixture(autouse=True)
def consumer_settings(settings):
    settings.EVENT_BUS_KAFKA_CONSUMER_POLL_TIMEOUT = 0.1
    settings.EVENT_BUS_KAFKA_CONSUMER_POLL_FAILURE_SLEEP = 0.1
    settings.EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG = {"auto.offset.reset": "earliest"}
    settings.EVENT_BUS_OUTBOX_CONSUMER_RETRY_BACKOFF_SECONDS = 0.01
    return settings
