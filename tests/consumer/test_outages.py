"""
Outages of the real broker and registry while ``consume_events`` runs: the consumer keeps
running, skips nothing, and carries on when the service is back.
"""

import collections
import time

import pytest

from tests.consumer.helpers import assert_everything_committed, new_group, produce_events
from tests.consumer.subprocesses import journal_lines, start_consumer, stop, wait_for
from tests.factories import enrollment_event
from tests.kafka_tools import stack_service

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka, pytest.mark.stack_restart]


def _ended(journal):
    return collections.Counter(line.split()[1] for line in journal_lines(journal) if line.startswith("end "))


def test_a_broker_restart_mid_consumption_skips_nothing(topic, tmp_path):
    ids = {str(m.id) for m in produce_events(topic, [enrollment_event() for _ in range(60)])}
    journal, group = tmp_path / "journal", new_group()
    settings = {
        "EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG": {"auto.offset.reset": "earliest", "reconnect.backoff.max.ms": 1000}
    }
    consumer = start_consumer(topic, group, journal, settings=settings, OUTBOX_TEST_SLOW_SECONDS="0.05")
    try:
        wait_for(lambda: len(_ended(journal)) >= 5, what="consumption to start")
        stack_service("restart", "kafka")
        assert consumer.poll() is None, "the consumer must survive the broker restart"
        wait_for(lambda: set(_ended(journal)) == ids, timeout=120, what="every event after the restart")
    finally:
        output = stop(consumer)
    assert consumer.returncode == 0, output
    assert_everything_committed(topic, group)


def test_a_registry_outage_delays_messages_but_skips_none(topic, tmp_path):
    ids = {str(m.id) for m in produce_events(topic, [enrollment_event() for _ in range(3)])}
    journal, group = tmp_path / "journal", new_group()
    stack_service("stop", "registry")
    try:
        # A fresh process has no cached writer schema, so it needs the registry for each message.
        consumer = start_consumer(topic, group, journal, settings={"EVENT_BUS_KAFKA_CONSUMER_POLL_FAILURE_SLEEP": 0.5})
        time.sleep(6)  # long enough to join the group, read the messages and fail to decode them
        assert consumer.poll() is None, "the consumer must keep running while the registry is down"
        assert not journal_lines(journal)
    finally:
        stack_service("start", "registry")
    try:
        wait_for(lambda: set(_ended(journal)) == ids, timeout=120, what="every event once the registry is back")
    finally:
        output = stop(consumer)
    assert "Could not fetch writer schema" in output
    assert "Message skipped" not in output and "dead-lettered" not in output
    assert_everything_committed(topic, group)
