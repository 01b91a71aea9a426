"""Small helpers for tests that talk to the real broker and registry."""
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


class StackClients:
    def __init__(self, bootstrap_servers, registry_url):
        self.bootstrap_servers = bootstrap_servers
        self.registry_url = registry_url
        self.admin = AdminClient({"bootstrap.servers": bootstrap_servers})

    def create_topic(self, name, partitions=1):
        futures = self.admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        futures[name].result(timeout=30)

    def read_all(self, topic, expected=None, timeout=30.0):
        """Every message of a topic from the beginning; stops at ``expected`` messages or the end."""
        consumer = Consumer({
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": f"reader-{topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        })
        try:
            metadata = consumer.list_topics(topic, timeout=10)
            partitions = [TopicPartition(topic, p, 0) for p in metadata.topics[topic].partitions]
            consumer.assign(partitions)
            ends = {p.partition: consumer.get_watermark_offsets(p, timeout=10)[1] for p in partitions}
            messages, done = [], {p for p, end in ends.items() if end == 0}
            import time  # pylint: disable=import-outside-toplevel
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if expected is not None and len(messages) >= expected:
                    break
                if expected is None and len(done) == len(ends):
                    break
                msg = consumer.poll(0.5)
                if msg is None or msg.error():
                    continue
                messages.append(msg)
                if msg.offset() + 1 >= ends[msg.partition()]:
                    done.add(msg.partition())
            return messages
        finally:
            consumer.close()


def stack_service(action, service):
    """Stop, start or restart one service of the local stack (``stack/stack.sh``), for failure tests."""
    import subprocess  # pylint: disable=import-outside-toplevel
    from pathlib import Path  # pylint: disable=import-outside-toplevel
    script = Path(__file__).resolve().parent.parent / "stack" / "stack.sh"
    subprocess.run(["bash", str(script), action, service], check=True, capture_output=True, timeout=300)
