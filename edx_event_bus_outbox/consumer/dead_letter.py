"""
The dead-letter topic: where unusable messages, and messages whose receivers kept failing, go.

The original key, value and headers are copied unchanged (so the message can be replayed to
its topic as it was), followed by ``dlt_*`` headers saying why and from where. The consumer
waits for the broker's acknowledgement before it commits past the original message.
"""
import logging
from datetime import datetime, timezone

from confluent_kafka import Producer

from .. import conf
from ..kafka.config import producer_config
from .errors import DeadLetterError

logger = logging.getLogger(__name__)

ERROR_HEADER_LENGTH = 2000


def dead_letter_headers(msg, *, reason: str, error: str, group_id: str) -> list:
    """The original headers, then ours; all values UTF-8 bytes like the CloudEvents headers."""
    extra = {
        "dlt_reason": reason,
        "dlt_error": error[:ERROR_HEADER_LENGTH],
        "dlt_original_topic": msg.topic(),
        "dlt_original_partition": str(msg.partition()),
        "dlt_original_offset": str(msg.offset()),
        "dlt_original_timestamp_ms": str(msg.timestamp()[1]),
        "dlt_consumer_group": group_id,
        "dlt_failed_at": datetime.now(timezone.utc).isoformat(),
    }
    return list(msg.headers() or []) + [(name, value.encode("utf-8")) for name, value in extra.items()]


class DeadLetterProducer:
    """One idempotent producer, created on first use: most consumers never dead-letter anything."""

    def __init__(self, topic: str, group_id: str):
        self.topic = topic
        self.group_id = group_id
        self.timeout = conf.consumer_dead_letter_timeout()
        self._producer = None

    def send(self, msg, *, reason: str, error: str):
        """Produce and wait for the acknowledgement; ``DeadLetterError`` if it does not come."""
        delivery = {}
        try:
            self._get_producer().produce(
                self.topic, key=msg.key(), value=msg.value(),
                headers=dead_letter_headers(msg, reason=reason, error=error, group_id=self.group_id),
                on_delivery=lambda err, delivered: delivery.update(error=err, message=delivered),
            )
            self._producer.flush(self.timeout + 5)
        except Exception as exc:  # pylint: disable=broad-except
            # BufferError, KafkaException (e.g. message too large): the message is not stored.
            raise DeadLetterError(self.topic, repr(exc)) from exc
        if "error" not in delivery:
            raise DeadLetterError(self.topic, f"no acknowledgement within {self.timeout:g}s")
        if delivery["error"] is not None:
            raise DeadLetterError(self.topic, str(delivery["error"]))
        return delivery["message"]

    def close(self):
        if self._producer is not None:
            self._producer.flush(self.timeout)

    def _get_producer(self):
        if self._producer is None:
            self._producer = Producer(producer_config(**{"message.timeout.ms": int(self.timeout * 1000)}))
        return self._producer
