"""Start ``python manage.py consume_events`` the way an operator would, on the test database."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def start_consumer(topic, group, journal, *, extra=None, settings=None, **env):
    command = [sys.executable, "manage.py", "consume_events", "-t", topic, "-g", group]
    if extra:
        command += ["--extra", json.dumps(extra)]
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.consumer.settings",
        "OUTBOX_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
        "OUTBOX_TEST_JOURNAL": str(journal),
        "OUTBOX_TEST_SETTINGS": json.dumps(settings or {}),
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    return subprocess.Popen(
        command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def journal_lines(journal):
    path = Path(journal)
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def wait_for(condition, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stop(process, timeout=15.0):
    """SIGTERM, then the output; kills (and fails) a process that does not exit in time."""
    process.terminate()
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate(timeout=10)
        raise AssertionError(f"consumer did not exit within {timeout}s of SIGTERM:\n{output}") from None
    return output
