"""
Create Kafka topics and wait until they can be used.

A topic the broker has just accepted is not usable yet: until the controller has elected
a leader for every partition and that broker serves it, produce, ListOffsets and offset
commits fail with ``NOT_LEADER_FOR_PARTITION`` or ``UNKNOWN_TOPIC_OR_PART``. On a fresh
broker this window is long enough to break the first run of anything that creates a topic
and uses it at once (see docs/decisions/0009-bounded-waits.rst). Everything that creates a
topic -- tests, the demo, the benchmarks, chaos, the stack smoke check -- goes through
``create_topics``.

Needs no Django settings: the caller passes the librdkafka client configuration.
"""

import time

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from ..exceptions import TopicNotReadyError

POLL_INTERVAL = 0.2  # seconds between readiness checks; leaders appear within a second or two


def create_topics(
    client_config: dict,
    partitions: dict,
    *,
    timeout: float = 60.0,
    exist_ok: bool = False,
    topic_config: dict | None = None,
) -> None:
    """
    Create each topic of ``partitions`` (name -> partition count) and return once every
    partition of every topic has a leader that answers for it.

    With ``exist_ok``, a topic that already exists is kept as it is (and waited for too).
    Raises ``TopicNotReadyError`` when a topic cannot be created, or when its partitions
    have no answering leader within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    admin = AdminClient(client_config)
    expected = _create(admin, partitions, deadline, exist_ok, topic_config or {})
    _wait_for_leaders(admin, expected, deadline, timeout)


def _create(admin, partitions, deadline, exist_ok, topic_config):
    """Partitions to wait for, by topic: as asked for a new topic, at least one for one that existed."""
    pending, expected = dict(partitions), {}
    while pending:
        new = [
            NewTopic(name, num_partitions=count, replication_factor=-1, config=topic_config)
            for name, count in pending.items()
        ]
        wait = _remaining(deadline, cap=30)
        futures = admin.create_topics(new, operation_timeout=wait, request_timeout=wait)
        for name, future in futures.items():
            error = _error_of(name, future, deadline)
            if error is None:
                expected[name] = pending.pop(name)
            elif exist_ok and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                expected[name] = 1
                del pending[name]
            elif not error.retriable() or time.monotonic() >= deadline:
                raise TopicNotReadyError(
                    name, f"could not be created: {error.str().rstrip('.')}; fix what the broker names and retry"
                )
        if pending:
            time.sleep(POLL_INTERVAL)
    return expected


def _error_of(name, future, deadline):
    """The broker's KafkaError for one topic's creation, or None once it is created."""
    try:
        future.result(timeout=_remaining(deadline, cap=30) + 5)
    except KafkaException as exc:
        return exc.args[0]
    except TimeoutError as exc:
        raise TopicNotReadyError(
            name, "could not be created: the broker did not answer; check that it is up and retry"
        ) from exc
    return None


def _wait_for_leaders(admin, partitions, deadline, timeout):
    while True:
        problem = _readiness_problem(admin, partitions, deadline)
        if problem is None:
            return
        if time.monotonic() >= deadline:
            raise TopicNotReadyError(
                ", ".join(partitions),
                f"has partitions without a leader after {timeout:g}s "
                f"(last seen: {problem}); check that the broker is up and elects "
                "partition leaders (its log says why not), then retry",
            )
        time.sleep(POLL_INTERVAL)


def _readiness_problem(admin, partitions, deadline):
    """None when every partition has a leader that answers ListOffsets for it, else what is missing."""
    wait = _remaining(deadline, cap=10)
    try:
        metadata = admin.list_topics(timeout=wait)
    except KafkaException as exc:
        return f"metadata request failed: {exc.args[0]}"
    probes = {}
    for name, count in partitions.items():
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None:
            return f"topic {name}: {topic.error if topic else 'not in the metadata'}"
        if len(topic.partitions) < count:
            return f"topic {name}: {len(topic.partitions)} of {count} partitions in the metadata"
        for number, partition in topic.partitions.items():
            if partition.error is not None or partition.leader < 0:
                return f"topic {name} partition {number}: {partition.error or 'no leader'}"
            probes[TopicPartition(name, number)] = OffsetSpec.latest()
    # The metadata can name a leader before that broker serves the partition: ask the leader itself.
    for tp, future in admin.list_offsets(probes, request_timeout=wait).items():
        try:
            future.result(timeout=wait + 5)
        except (KafkaException, TimeoutError) as exc:
            return f"topic {tp.topic} partition {tp.partition}: {exc.args[0] if exc.args else 'no answer'}"
    return None


def _remaining(deadline, cap):
    """Seconds left before ``deadline``, at least a little and at most ``cap``."""
    return max(0.5, min(cap, deadline - time.monotonic()))
