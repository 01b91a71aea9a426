"""Small helpers for tests that talk to the real broker and registry."""

import time

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from edx_event_bus_outbox.kafka.topics import create_topics

# Seconds a registry request may take: without a timeout the client waits forever for an answer.
REGISTRY_TIMEOUT = 10


class StackClients:
    def __init__(self, bootstrap_servers, registry_url):
        self.bootstrap_servers = bootstrap_servers
        self.registry_url = registry_url
        self.admin = AdminClient({"bootstrap.servers": bootstrap_servers})

    def create_topic(self, name, partitions=1):
        """A new topic whose partitions all have leaders, so it can be used at once."""
        create_topics({"bootstrap.servers": self.bootstrap_servers}, {name: partitions})

    def registry(self):
        """A schema registry client whose requests time out."""
        return SchemaRegistryClient({"url": self.registry_url, "timeout": REGISTRY_TIMEOUT})

    def set_group_offsets(self, group, topic, offset):
        """Commit ``offset`` on every partition of ``topic`` for ``group``, which must have no members."""
        partitions = self.admin.list_topics(topic, timeout=10).topics[topic].partitions
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, offset) for p in partitions])
        self.admin.alter_consumer_group_offsets([request], request_timeout=30)[group].result(timeout=40)

    def read_all(self, topic, expected=None, timeout=30.0, isolation_level="read_committed"):
        """Every message of a topic from the beginning; stops at ``expected`` messages or the end."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                "group.id": f"reader-{topic}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "isolation.level": isolation_level,
            }
        )
        try:
            metadata = consumer.list_topics(topic, timeout=10)
            partitions = [TopicPartition(topic, p, 0) for p in metadata.topics[topic].partitions]
            consumer.assign(partitions)
            deadline = time.monotonic() + timeout
            ends = {p.partition: _high_watermark(consumer, p, deadline) for p in partitions}
            messages, done = [], {p for p, end in ends.items() if end == 0}
            while time.monotonic() < deadline:
                if expected is not None and len(messages) >= expected:
                    break
                if expected is None and len(done) == len(ends):
                    break
                msg = consumer.poll(0.5)
                if msg is None or msg.error():
                    # A transaction's last message is followed by its commit marker, which is never
                    # returned: the partition is done once the position has passed its end.
                    positions = consumer.position([TopicPartition(topic, p) for p in ends if p not in done])
                    done.update(p.partition for p in positions if p.offset >= ends[p.partition])
                    continue
                messages.append(msg)
                if msg.offset() + 1 >= ends[msg.partition()]:
                    done.add(msg.partition())
            return messages
        finally:
            consumer.close()


def _high_watermark(consumer, partition, deadline):
    """A partition's end offset, asked again while its leader is still being elected (just after a broker restart)."""
    electing = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE)
    while True:
        try:
            return consumer.get_watermark_offsets(partition, timeout=10)[1]
        except KafkaException as exc:
            if exc.args[0].code() not in electing or time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def stack_service(action, service):
    """Stop, start or restart one service of the local stack (``stack/stack.sh``), for failure tests."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "stack" / "stack.sh"
    subprocess.run(["bash", str(script), action, service], check=True, capture_output=True, timeout=300)


SEED_MODULES_WITH_A_REGISTRY_CLIENT = ("edx_event_bus_kafka.internal.producer", "edx_event_bus_kafka.internal.consumer")


def give_edx_event_bus_kafka_our_registry_client(set_attribute=setattr):
    """
    Make edx-event-bus-kafka's producer and consumer use our schema registry client.

    Theirs is built without a request timeout, so a request the registry never answers
    blocks for ever (it hung a CI run); ours is the same client with
    ``EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_TIMEOUT_SECONDS``. Tests pass ``monkeypatch.setattr``;
    the benchmarks patch for the whole process.
    """
    import importlib

    from edx_event_bus_outbox.kafka.config import schema_registry_client

    for name in SEED_MODULES_WITH_A_REGISTRY_CLIENT:
        set_attribute(importlib.import_module(name), "get_schema_registry_client", schema_registry_client)
