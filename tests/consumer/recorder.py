"""
A test-only Django app for consumer subprocesses: a receiver that journals what it handles.

Driven by environment variables, so one settings module serves every subprocess test:

* ``OUTBOX_TEST_JOURNAL``: file that gets ``begin <ce_id>`` and ``end <ce_id>`` lines.
* ``OUTBOX_TEST_JOURNAL_TAG``: if set, appended to each line (``begin <ce_id> <tag>``), so that
  several consumers can share one journal -- one order of receipts -- and still be told apart.
* ``OUTBOX_TEST_SLOW_SECONDS``: sleep between the two lines (a message "in progress").
* ``OUTBOX_TEST_KILL_AFTER``: a ``ce_id``; after journaling its ``end`` line the process
  SIGKILLs itself -- processed, but not yet committed.
* ``OUTBOX_TEST_FAIL_EVENT``: a ``ce_id`` whose receiver raises every time (after its ``begin`` line).
"""

import os
import signal
import time

from django.apps import AppConfig


def journal(line):
    tag = os.environ.get("OUTBOX_TEST_JOURNAL_TAG")
    if tag:
        line = f"{line} {tag}"
    with open(os.environ["OUTBOX_TEST_JOURNAL"], "a", encoding="utf-8") as journal_file:
        journal_file.write(line + "\n")
        journal_file.flush()
        os.fsync(journal_file.fileno())


def record(metadata, **kwargs):
    event_id = str(metadata.id)
    journal(f"begin {event_id}")
    if event_id == os.environ.get("OUTBOX_TEST_FAIL_EVENT"):
        raise RuntimeError("the receiver failed, as the test asked")
    time.sleep(float(os.environ.get("OUTBOX_TEST_SLOW_SECONDS", "0")))
    journal(f"end {event_id}")
    if event_id == os.environ.get("OUTBOX_TEST_KILL_AFTER"):
        os.kill(os.getpid(), signal.SIGKILL)


class RecorderConfig(AppConfig):
    name = "tests.consumer"
    label = "consumer_test_recorder"

    def ready(self):
        from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

        COURSE_ENROLLMENT_CREATED.connect(record, dispatch_uid="consumer-test-recorder")
