"""A real Celery worker in a child process, on this test's database and a queue of its own."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest
from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.db import connection

from tests.ops.celery_app import app
from tests.outbox_tools import ROOT

STARTUP_SECONDS = 60


class Worker:
    """``celery worker --pool=solo`` consuming only a fresh queue, so parallel runs never share tasks."""

    def __init__(self, log_path):
        self.queue = f"outbox-tests-{uuid.uuid4().hex[:12]}"
        self.name = f"{self.queue}@{socket.gethostname()}"
        self.log_path = log_path
        self.process = None

    def start(self):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONUNBUFFERED": "1",
            "OUTBOX_TEST_DB_NAME": connection.settings_dict["NAME"],
        }
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "tests.ops.celery_app",
                    "worker",
                    "--pool=solo",
                    "--queues",
                    self.queue,
                    "--hostname",
                    self.name,
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel=INFO",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_ready()

    def _wait_until_ready(self):
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"Celery worker exited with {self.process.returncode}:\n{self.log()}", pytrace=False)
            if app.control.ping(destination=[self.name], timeout=0.5):
                return
        pytest.fail(f"Celery worker did not answer a ping within {STARTUP_SECONDS}s:\n{self.log()}", pytrace=False)

    def run(self, task, timeout=60, **kwargs):
        """Send ``task`` to this worker and return its result (or raise the task's exception)."""
        result = task.apply_async(kwargs=kwargs, queue=self.queue)
        try:
            return result.get(timeout=timeout)
        except CeleryTimeoutError:
            pytest.fail(f"{task.name} gave no result within {timeout}s; worker log:\n{self.log()}", pytrace=False)

    def stop(self):
        """Warm shutdown (SIGTERM), and SIGKILL if that takes too long: never leave a worker behind."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)

    def log(self):
        return self.log_path.read_text(errors="replace")[-5000:]
