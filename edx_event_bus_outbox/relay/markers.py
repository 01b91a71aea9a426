"""
Marker records: the last message of every exactly-once batch's Kafka transaction, naming the
batch's row ids, on the transactions topic (ADR 20).

A relay that takes a lane over reads the lane's last committed marker to learn what its
predecessor's last transaction published: those rows may be pending still, if the relay died
between the Kafka commit and marking them. Ids are listed, not given as a range: a batch's ids
are not contiguous (rows of transactions that commit late are claimed by a later batch).
"""

import json
import time

from ..exceptions import TopicNotReadyError
from ..kafka.config import common_client_config, kafka_client, marker_reader_config
from ..kafka.topics import create_topics
from .errors import InfrastructureUnavailable

# How many records a look back reads at first; each further look reads four times more.
FIRST_LOOK_BACK = 256


def marker_value(row_ids) -> bytes:
    """The ids as ``[[first, last], ...]`` runs: a batch of consecutive ids takes a few bytes."""
    runs = []
    for row_id in row_ids:
        if runs and runs[-1][1] == row_id - 1:
            runs[-1][1] = row_id
        else:
            runs.append([row_id, row_id])
    return json.dumps({"ids": runs}, separators=(",", ":")).encode()


def marked_ids(value: bytes) -> list:
    return [row_id for first, last in json.loads(value)["ids"] for row_id in range(first, last + 1)]


class MarkerReader:
    """Finds a key's last committed marker, reading the topic's one partition backwards in growing windows."""

    def __init__(self, topic: str, timeout: float):
        from confluent_kafka import Consumer, TopicPartition

        _create_if_missing(topic, timeout)
        self.partition = TopicPartition(topic, 0)
        self.committed = kafka_client(Consumer, marker_reader_config("read_committed"))
        self.uncommitted = kafka_client(Consumer, marker_reader_config("read_uncommitted"))

    def last_ids(self, key: bytes, timeout: float) -> list:
        """
        The row ids of ``key``'s last committed marker, or ``[]``. Call it after the key's
        producer's ``init_transactions()``, which settles the key's last transaction.

        The end is the log end, not the last stable offset: the key's last marker may lie
        after another lane's open transaction, so reading committed data waits for that one
        to end (at most a lease: its ``transaction.timeout.ms``).
        """
        deadline = time.monotonic() + timeout
        start, end = self._watermarks(self.uncommitted, deadline)
        window = FIRST_LOOK_BACK
        while end > start:
            begin = max(start, end - window)
            value = self._last_value_of(key, begin, end, deadline)
            if value is not None:
                return marked_ids(value)
            end, window = begin, window * 4
        return []

    def _last_value_of(self, key, begin, end, deadline):
        from confluent_kafka import TopicPartition

        self.committed.assign([TopicPartition(self.partition.topic, 0, begin)])
        found = None
        while self._position() < end:
            if time.monotonic() >= deadline:
                raise InfrastructureUnavailable(
                    f"could not read the transactions topic {self.partition.topic!r} up to offset {end} in time "
                    "(another relay's transaction may still be open on it)"
                )
            message = self.committed.poll(0.2)
            if message is None or message.error():
                continue
            if message.offset() < end and message.key() == key:
                found = message.value()
        return found

    def _position(self):
        (position,) = self.committed.position([self.partition])
        return position.offset if position.offset >= 0 else -1

    def _watermarks(self, consumer, deadline):
        from confluent_kafka import KafkaException

        try:
            return consumer.get_watermark_offsets(self.partition, timeout=max(0.1, deadline - time.monotonic()))
        except KafkaException as exc:
            raise InfrastructureUnavailable(
                f"could not read the transactions topic {self.partition.topic!r}: {exc.args[0].str()}"
            ) from exc

    def close(self):
        self.committed.close()
        self.uncommitted.close()


def _create_if_missing(topic, timeout):
    """One partition, so that a lane's markers are in commit order; compacted, so a lane's last one is kept."""
    try:
        create_topics(
            common_client_config(),
            {topic: 1},
            timeout=timeout,
            exist_ok=True,
            topic_config={"cleanup.policy": "compact"},
        )
    except TopicNotReadyError as exc:
        raise InfrastructureUnavailable(
            f"the transactions topic {topic!r} is missing and could not be created ({exc}); create it with one "
            "partition and cleanup.policy=compact, or allow the relay to (EVENT_BUS_OUTBOX_RELAY_TRANSACTIONS_TOPIC)"
        ) from exc
