"""
``create_topics`` returns only once every partition's leader answers for it (the demo's first
run failed with NOT_LEADER_FOR_PARTITION on a topic it had just created), and fails within
its deadline, with a message naming the topic, when it cannot.
"""

import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition

from edx_event_bus_outbox.exceptions import TopicNotReadyError
from edx_event_bus_outbox.kafka.topics import create_topics


def _name():
    return f"test-topics-{uuid.uuid4().hex[:12]}"


@pytest.mark.kafka
def test_a_created_topic_answers_for_every_partition_at_once(kafka_stack):
    # Right after CreateTopics, ListOffsets failed with NOT_LEADER_FOR_PARTITION about one
    # time in three on this stack, even once the metadata named leaders; ten topics of three
    # partitions make a missing wait all but certain to show.
    for _ in range(10):
        name = _name()
        kafka_stack.create_topic(name, partitions=3)
        consumer = Consumer({"bootstrap.servers": kafka_stack.bootstrap_servers, "group.id": name})
        try:
            assert [consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10) for p in range(3)] == [
                (0, 0)
            ] * 3
        finally:
            consumer.close()


@pytest.mark.kafka
def test_an_existing_topic_is_kept_with_exist_ok_and_refused_without(kafka_stack):
    name = _name()
    config = {"bootstrap.servers": kafka_stack.bootstrap_servers}
    create_topics(config, {name: 2})
    create_topics(config, {name: 5}, exist_ok=True)
    assert len(kafka_stack.admin.list_topics(name, timeout=10).topics[name].partitions) == 2
    with pytest.raises(TopicNotReadyError, match=f"{name}' could not be created: .*already exists"):
        create_topics(config, {name: 2})


def test_an_unreachable_broker_fails_within_the_deadline_naming_the_topic():
    name = _name()
    started = time.monotonic()
    with pytest.raises(TopicNotReadyError, match=f"'{name}' could not be created") as error:
        create_topics({"bootstrap.servers": "127.0.0.1:9", "log_level": 0}, {name: 1}, timeout=2)
    assert time.monotonic() - started < 10
    assert error.value.topics == name
