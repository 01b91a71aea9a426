"""
The Celery app of the worker tests: Django's test settings, with Redis from the local stack as
both broker and result backend.

``celery -A tests.ops.celery_app worker`` runs it; Celery's Django fix-up (switched on by
DJANGO_SETTINGS_MODULE) calls ``django.setup()`` in the worker and closes database connections
after every task, so the test process can flush its tables between tests.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

# Importing the test settings loads .stack/env, where `make stack-up` writes the Redis URL.
import tests.settings  # noqa: E402,F401

REDIS_URL = os.environ.get("OUTBOX_TEST_REDIS_URL", "redis://127.0.0.1:6380/0")

app = Celery("edx-event-bus-outbox-tests")
app.conf.update(
    broker_url=REDIS_URL,
    result_backend=REDIS_URL,
    broker_connection_retry_on_startup=True,
    task_serializer="json",
    result_serializer="json",
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks(["edx_event_bus_outbox"])
