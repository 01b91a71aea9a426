"""
``--extra '{"offset_time": ...}'`` replays from that time and keeps consuming; a
timestamp without timezone is read as UTC, and the log says so.
"""

import logging
import time
from datetime import UTC, datetime

import pytest

from edx_event_bus_outbox.consumer.errors import ConsumerConfigurationError
from edx_event_bus_outbox.consumer.replay import parse_offset_time
from tests.consumer.helpers import new_group, produce_events
from tests.consumer.subprocesses import journal_lines, start_consumer, stop, wait_for
from tests.factories import enrollment_event


def _ended(journal):
    return [line.split()[1] for line in journal_lines(journal) if line.startswith("end ")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.kafka
def test_consume_events_with_offset_time_replays_then_keeps_consuming(topic, tmp_path):
    old = [str(m.id) for m in produce_events(topic, [enrollment_event() for _ in range(2)], partition=0)]
    time.sleep(0.5)
    replay_from = datetime.now(UTC)
    time.sleep(0.5)
    replayed = [str(m.id) for m in produce_events(topic, [enrollment_event() for _ in range(2)], partition=1)]
    group = new_group()

    # The group first consumes everything, so a plain restart would start at the end.
    journal = tmp_path / "journal"
    consumer = start_consumer(topic, group, journal)
    wait_for(lambda: len(_ended(journal)) == 4, what="the first pass")
    stop(consumer)
    journal.unlink()

    naive_utc = replay_from.replace(tzinfo=None).isoformat()
    consumer = start_consumer(topic, group, journal, extra={"offset_time": naive_utc})
    try:
        wait_for(lambda: len(_ended(journal)) == 2, what="the replayed events")
        later = [str(m.id) for m in produce_events(topic, [enrollment_event()], partition=2)]
        wait_for(lambda: len(_ended(journal)) == 3, what="an event produced after the replay")
    finally:
        output = stop(consumer)

    assert sorted(_ended(journal)) == sorted(replayed + later)
    assert not set(old) & set(_ended(journal))
    assert f"offset_time '{naive_utc}' has no timezone; reading it as UTC: {replay_from.isoformat()}" in output
    assert f"Replay: {topic}[1] starts at offset 0" in output
    assert f"Replay: {topic}[0] has no message at or after" in output  # only older events there
    assert consumer.returncode == 0


def test_a_naive_offset_time_is_utc_and_the_log_says_so(caplog):
    caplog.set_level(logging.WARNING)
    assert parse_offset_time("2026-01-01T00:00:00") == datetime(2026, 1, 1, tzinfo=UTC)
    assert "has no timezone; reading it as UTC: 2026-01-01T00:00:00+00:00" in caplog.text


def test_offset_time_with_a_timezone_keeps_it():
    assert parse_offset_time("2026-01-01T00:00:00Z") == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_offset_time("2026-01-01T02:00:00+02:00") == datetime(2026, 1, 1, tzinfo=UTC)


def test_an_invalid_offset_time_names_the_expected_format():
    with pytest.raises(ConsumerConfigurationError, match="2026-01-01T00:00:00Z"):
        parse_offset_time("yesterday")


class FakeAssigningConsumer:
    """Only what ``ReplayFrom.on_assign`` calls; the real seek is shown by the test above."""

    def __init__(self):
        self.lookups, self.assigned = [], []

    def offsets_for_times(self, partitions, timeout):
        from confluent_kafka import TopicPartition

        self.lookups.append([(p.partition, p.offset) for p in partitions])
        return [TopicPartition(p.topic, p.partition, 100 + p.partition) for p in partitions]

    def assign(self, partitions):
        self.assigned.append([(p.partition, p.offset) for p in partitions])


def test_each_partition_is_rewound_on_its_first_assignment_only():
    from confluent_kafka import OFFSET_INVALID, TopicPartition

    from edx_event_bus_outbox.consumer.replay import ReplayFrom

    start = datetime(2026, 1, 1, tzinfo=UTC)
    replay, consumer = ReplayFrom(start), FakeAssigningConsumer()
    replay.on_assign(consumer, [TopicPartition("t", 0), TopicPartition("t", 1)])
    replay.on_assign(consumer, [TopicPartition("t", 1), TopicPartition("t", 2)])  # after a rebalance

    start_ms = int(start.timestamp() * 1000)
    assert consumer.lookups == [[(0, start_ms), (1, start_ms)], [(2, start_ms)]]
    assert consumer.assigned == [[(0, 100), (1, 101)], [(1, OFFSET_INVALID), (2, 102)]]
