"""
Which offsets may be committed, and when: the heart of at-least-once.

Only a message that was processed, dead-lettered or deliberately skipped ever moves a
partition's next-offset-to-commit, so a commit can never cover a message that is still being
handled. Commits are synchronous and batched in time (``EVENT_BUS_OUTBOX_CONSUMER_COMMIT_INTERVAL_SECONDS``);
see docs/decisions/0006-consumer-at-least-once.rst.
"""

import logging
import time

from confluent_kafka import KafkaException, TopicPartition

logger = logging.getLogger(__name__)


class OffsetTracker:
    def __init__(self, consumer, interval: float, clock=time.monotonic):
        self._consumer = consumer
        self._interval = interval
        self._clock = clock
        self._pending = {}  # (topic, partition) -> offset of the next message to read
        self._last_commit = clock()

    @property
    def pending(self) -> dict:
        return dict(self._pending)

    def done(self, msg):
        """``msg`` is finished with; the group may move past it."""
        self._pending[(msg.topic(), msg.partition())] = msg.offset() + 1

    def commit_if_due(self):
        if self._pending and self._clock() - self._last_commit >= self._interval:
            self.commit()

    def commit(self, partitions=None) -> bool:
        """
        Commit the pending offsets (of ``partitions``, or all) and wait for the broker. On failure
        they stay pending for the next commit; returns whether everything was committed.
        """
        keys = [key for key in self._pending if partitions is None or key in partitions]
        if not keys:
            return True
        offsets = [TopicPartition(topic, partition, self._pending[(topic, partition)]) for topic, partition in keys]
        try:
            results = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            logger.warning(
                "Could not commit offsets %s (%s); they will be committed at the next chance.",
                _describe(offsets),
                exc.args[0],
            )
            return False
        failed = {(tp.topic, tp.partition) for tp in results or [] if tp.error is not None}
        if failed:
            logger.warning("Could not commit offsets of %s; they will be committed at the next chance.", sorted(failed))
        for key in keys:
            if key not in failed:
                del self._pending[key]
        self._last_commit = self._clock()
        return not failed

    def on_revoke(self, _consumer, partitions):
        """Before a rebalance takes partitions away, commit what was done with them."""
        revoked = {(p.topic, p.partition) for p in partitions}
        self.commit(revoked)
        self._forget(revoked)

    def on_lost(self, _consumer, partitions):
        """Partitions already owned by someone else: too late to commit; they re-deliver from the last commit."""
        lost = {(p.topic, p.partition) for p in partitions}
        if lost & set(self._pending):
            logger.warning(
                "Partitions %s were lost before their offsets were committed; their last "
                "messages will be handled again by the new owner.",
                sorted(lost),
            )
        self._forget(lost)

    def _forget(self, keys):
        for key in keys:
            self._pending.pop(key, None)


def _describe(offsets) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in offsets)
