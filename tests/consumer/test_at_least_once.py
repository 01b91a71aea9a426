"""
Offsets are committed only after processing; a crash replays, never skips;
SIGTERM finishes the current message, commits and exits within seconds.

These run ``python manage.py consume_events`` in a subprocess, as in production.
"""

import collections
import signal
import time

import pytest

from tests.consumer.helpers import (
    assert_everything_committed,
    group_offsets,
    new_group,
    produce_events,
    uncommitted,
)
from tests.consumer.subprocesses import journal_lines, start_consumer, stop, wait_for
from tests.factories import enrollment_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka]


def _ended(journal):
    return collections.Counter(line.split()[1] for line in journal_lines(journal) if line.startswith("end "))


@pytest.mark.parametrize("commit_interval", [0, 1.0], ids=["commit-each-message", "commit-every-second"])
def test_a_crash_after_processing_replays_the_message_and_skips_nothing(topic, tmp_path, commit_interval):
    ids = [str(m.id) for m in produce_events(topic, [enrollment_event() for _ in range(6)])]
    victim = ids[2]
    journal, group = tmp_path / "journal", new_group()
    settings = {
        "EVENT_BUS_OUTBOX_CONSUMER_COMMIT_INTERVAL_SECONDS": commit_interval,
        # The killed member never leaves the group: keep the wait for its session to expire short.
        "EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG": {
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
        },
    }

    first = start_consumer(topic, group, journal, settings=settings, OUTBOX_TEST_KILL_AFTER=victim)
    output, _ = first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL, output
    assert _ended(journal)[victim] == 1  # processed, then killed before its commit

    second = start_consumer(topic, group, journal, settings=settings)
    try:
        # The victim's replay too: the first run may have processed every other event before it.
        # And the group's commits: with a commit interval, the first run also left other processed
        # messages uncommitted, and their replays may come after the victim's.
        wait_for(
            lambda: set(_ended(journal)) == set(ids) and _ended(journal)[victim] == 2 and not uncommitted(topic, group),
            timeout=90,
            what="every event to be processed, the victim replayed, and every offset committed",
        )
    finally:
        output = stop(second)
    assert second.returncode == 0, output

    ended = _ended(journal)
    assert set(ended) == set(ids)  # nothing skipped
    assert ended[victim] == 2  # the uncommitted message was replayed
    if commit_interval == 0:
        # Everything processed before the crash had been committed: replayed nothing else.
        assert all(count == 1 for event_id, count in ended.items() if event_id != victim), ended
    assert_everything_committed(topic, group)


def test_sigterm_finishes_the_current_message_commits_and_exits(topic, tmp_path):
    events = [enrollment_event(), enrollment_event()]
    first_id, second_id = [str(m.id) for m in produce_events(topic, events, partition=0)]
    journal, group = tmp_path / "journal", new_group()
    consumer = start_consumer(topic, group, journal, OUTBOX_TEST_SLOW_SECONDS="1.5")
    wait_for(lambda: f"begin {first_id}" in journal_lines(journal), what="the first message to start")

    signalled = time.monotonic()
    output = stop(consumer)
    took = time.monotonic() - signalled

    assert consumer.returncode == 0, output
    assert took < 10, f"took {took:.1f}s to exit"
    assert journal_lines(journal) == [f"begin {first_id}", f"end {first_id}"], "finished the current message only"
    assert group_offsets(topic, group)[0] == 1, "committed the finished message, not the next one"
    assert "Stopping: committing processed offsets and closing the consumer." in output
    assert second_id not in output
