"""Fixtures for the operations tests: a real Celery worker, on the stack's Redis (``redis_stack``)."""

import pytest

from tests.ops.worker import Worker


@pytest.fixture(scope="module")
def celery_worker_process(redis_stack, django_db_setup, tmp_path_factory):
    """One worker per test module (starting one costs seconds), always stopped at the end."""
    worker = Worker(tmp_path_factory.mktemp("celery") / "worker.log")
    try:
        worker.start()
        yield worker
    finally:
        worker.stop()
