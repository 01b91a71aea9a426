"""Fixtures for the operations tests: Redis from the local stack and a real Celery worker."""

import os
import socket
from urllib.parse import urlparse

import pytest

from tests.conftest import refuse_in_unit_run
from tests.ops.celery_app import REDIS_URL
from tests.ops.worker import Worker


@pytest.fixture(scope="session")
def redis_stack():
    """Redis as Celery's broker, or a skip (outside CI) / failure (in CI), like ``kafka_stack``."""
    refuse_in_unit_run("redis_stack")
    url = urlparse(REDIS_URL)
    try:
        socket.create_connection((url.hostname, url.port or 6379), timeout=2).close()
    except OSError:
        message = f"Redis ({REDIS_URL}) not reachable; run `make stack-up`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(f"!!! SKIPPED, NOT TESTED: {message}")
    return REDIS_URL


@pytest.fixture(scope="module")
def celery_worker_process(redis_stack, django_db_setup, tmp_path_factory):
    """One worker per test module (starting one costs seconds), always stopped at the end."""
    worker = Worker(tmp_path_factory.mktemp("celery") / "worker.log")
    try:
        worker.start()
        yield worker
    finally:
        worker.stop()
