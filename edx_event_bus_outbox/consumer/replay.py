"""
``--extra '{"offset_time": "2026-01-01T00:00:00Z"}'``: replay from a point in time, then keep consuming.

The first time this process is assigned a partition, it starts at the partition's first
message whose timestamp is at or after ``offset_time`` (``offsets_for_times``), or at its
end when there is none. Later assignments of the same partition (rebalances) resume from the
committed offset, so a rebalance does not replay again. Unlike edx-event-bus-kafka, which only
resets offsets and sleeps, this consumer processes the replayed messages and everything after.
"""

import logging
from datetime import UTC, datetime

from confluent_kafka import TopicPartition

from .errors import ConsumerConfigurationError, ReplayError

logger = logging.getLogger(__name__)

LOOKUP_TIMEOUT_SECONDS = 10.0
OFFSET_END = -1  # what offsets_for_times returns when no message is that recent


def parse_offset_time(value) -> datetime:
    """An aware datetime; a timestamp without timezone is read as UTC, and the log says so."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError as exc:
            raise ConsumerConfigurationError(
                f'offset_time {value!r} is not an ISO-8601 timestamp; use e.g. "2026-01-01T00:00:00Z".'
            ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
        logger.warning("offset_time %r has no timezone; reading it as UTC: %s", str(value), parsed.isoformat())
    return parsed


def is_incremental(kafka_config: dict) -> bool:
    """Cooperative rebalancing hands over partitions incrementally, and needs incremental_assign."""
    return (
        "cooperative" in str(kafka_config.get("partition.assignment.strategy", ""))
        or kafka_config.get("group.protocol") == "consumer"
    )


class ReplayFrom:
    """The ``on_assign`` callback that moves each newly assigned partition to ``start``."""

    def __init__(self, start: datetime, incremental: bool = False):
        self.start = start
        self.incremental = incremental
        self._start_ms = int(start.timestamp() * 1000)
        self._replayed = set()

    def on_assign(self, consumer, partitions):
        fresh = [p for p in partitions if (p.topic, p.partition) not in self._replayed]
        if fresh:
            starts = self._offsets_at_start(consumer, fresh)
            for partition in partitions:
                partition.offset = starts.get((partition.topic, partition.partition), partition.offset)
            self._replayed.update(starts)
        if self.incremental:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)

    def _offsets_at_start(self, consumer, partitions) -> dict:
        query = [TopicPartition(p.topic, p.partition, self._start_ms) for p in partitions]
        found = consumer.offsets_for_times(query, timeout=LOOKUP_TIMEOUT_SECONDS)
        errors = [f"{p.topic}[{p.partition}]: {p.error}" for p in found if p.error is not None]
        if errors:
            raise ReplayError(
                f"Could not find the offsets for offset_time {self.start.isoformat()}: {'; '.join(errors)}. "
                "Nothing was consumed from these partitions; restart the consumer to try again."
            )
        for p in found:
            if p.offset == OFFSET_END:
                logger.info(
                    "Replay: %s[%s] has no message at or after %s; starting at its end.",
                    p.topic,
                    p.partition,
                    self.start.isoformat(),
                )
            else:
                logger.info(
                    "Replay: %s[%s] starts at offset %s, its first message at or after %s.",
                    p.topic,
                    p.partition,
                    p.offset,
                    self.start.isoformat(),
                )
        return {(p.topic, p.partition): p.offset for p in found}
