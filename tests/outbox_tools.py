"""Writing events into the outbox and running relays, for the relay and end-to-end tests."""

import os
import signal as signals
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

from django.core.management import ManagementUtility
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from opaque_keys.edx.keys import CourseKey
from openedx_events.data import EventsMetadata

from edx_event_bus_outbox import create_producer
from edx_event_bus_outbox.relay.relay import Relay, RelayOptions
from tests.factories import CourseDataFactory, CourseEnrollmentDataFactory, enrollment_event

ROOT = Path(__file__).resolve().parent.parent
KEY_FIELD = "enrollment.course.course_key"


def course_key(index):
    return CourseKey.from_string(f"course-v1:edX+Key{index}+Run")


def migrate_outbox(target=None):
    """Migrate the outbox app to ``target``, or else to its latest migration (what every other test expects)."""
    executor = MigrationExecutor(connection)
    app = "edx_event_bus_outbox"
    executor.migrate([(app, target)] if target else executor.loader.graph.leaf_nodes(app))


def write_events(topic, count, keys=5, per_transaction=1):
    """Commit ``count`` enrollment events spread over ``keys`` course keys; returns their metadata in order."""
    producer = create_producer()
    signal, _, _ = enrollment_event()
    written = []
    for start in range(0, count, per_transaction):
        with transaction.atomic():
            for index in range(start, min(start + per_transaction, count)):
                data = {
                    "enrollment": CourseEnrollmentDataFactory(
                        course=CourseDataFactory(course_key=course_key(index % keys))
                    )
                }
                metadata = EventsMetadata(event_type=signal.event_type)
                producer.send(
                    signal=signal, topic=topic, event_key_field=KEY_FIELD, event_data=data, event_metadata=metadata
                )
                written.append(metadata)
    return written


def drain(topic=None, **options):
    """Run an in-process relay until nothing is pending."""
    relay = Relay(RelayOptions(lanes=[topic] if topic else None, until_empty=True, poll_interval=0.2, **options))
    relay.run()
    return relay


def relay_process(*args, log_path=None, env=None):
    """``manage.py run_outbox_relay`` in a child process, on this test's database."""
    child_env = dict(
        os.environ,
        OUTBOX_TEST_DB_NAME=connection.settings_dict["NAME"],
        DJANGO_SETTINGS_MODULE="tests.settings",
        PYTHONUNBUFFERED="1",
        **(env or {}),
    )
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "run_outbox_relay", *args],
        cwd=ROOT,
        env=child_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_for(condition, timeout, interval=0.1):
    """Poll ``condition`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def kill(process, sig=signals.SIGKILL):
    if process.poll() is None:
        process.send_signal(sig)
    return process.wait(timeout=30)


def manage(*args):
    """
    ``manage.py ARGS`` as a shell runs it -- ``run_from_argv``: a ``CommandError`` is printed
    without a traceback and becomes the exit status -- but in this process, on this test's
    database, without paying for a Python start-up. Returns a ``subprocess.CompletedProcess``.
    """
    out, err = StringIO(), StringIO()
    returncode = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            ManagementUtility(["manage.py", *args]).execute()
        except SystemExit as exc:
            returncode = exc.code or 0
    return subprocess.CompletedProcess(["manage.py", *args], returncode, out.getvalue(), err.getvalue())
