"""
The dead-letter topic: where unusable messages, and messages whose receivers kept failing, go.

The original key, value and headers are copied unchanged (so the message can be replayed to
its topic as it was), followed by ``dlt_*`` headers saying why and from where. The consumer
waits for the broker's acknowledgement before it commits past the original message.

A dead letter that the topic refuses as too large (the ``dlt_*`` headers made it so, or the
dead-letter topic's ``max.message.bytes`` is below the original's) is sent again without the
value, then without the key and the original headers too, and ``dlt_omitted`` says what was
left out: the dead letter of any message fits, whatever its size.
"""

import logging
from datetime import UTC, datetime

from confluent_kafka import KafkaException, Producer

from .. import conf
from ..exceptions import OutboxError
from ..kafka.config import kafka_client, producer_config
from ..kafka.headers import MessageHeaderError, message_headers
from .errors import DeadLetterError

logger = logging.getLogger(__name__)

ERROR_HEADER_LENGTH = 2000
# What the broker or librdkafka answers for a message above a size limit.
TOO_LARGE_ERRORS = frozenset({"MSG_SIZE_TOO_LARGE", "_MSG_SIZE_TOO_LARGE", "RECORD_LIST_TOO_LARGE"})
# Each attempt leaves out more of the original; the last is only the dlt_* headers (a few KB).
OMISSIONS = ((), ("value",), ("value", "key", "headers"))


def dead_letter_headers(msg, *, reason: str, error: str, group_id: str) -> list:
    """Our ``dlt_*`` headers, as UTF-8 bytes like the CloudEvents headers."""
    extra = {
        "dlt_reason": reason,
        "dlt_error": error[:ERROR_HEADER_LENGTH],
        "dlt_original_topic": msg.topic(),
        "dlt_original_partition": str(msg.partition()),
        "dlt_original_offset": str(msg.offset()),
        "dlt_original_timestamp_ms": str(msg.timestamp()[1]),
        "dlt_consumer_group": group_id,
        "dlt_failed_at": datetime.now(UTC).isoformat(),
    }
    return [(name, value.encode("utf-8")) for name, value in extra.items()]


def omission_headers(msg, omitted) -> list:
    if not omitted:
        return []
    return [
        ("dlt_omitted", ",".join(omitted).encode("utf-8")),
        ("dlt_original_value_bytes", str(len(msg.value() or b"")).encode("utf-8")),
    ]


def original_headers(msg):
    """The original headers, or None when confluent-kafka cannot read them (a name that is not UTF-8)."""
    try:
        return message_headers(msg)
    except MessageHeaderError:
        return None


class _TooLarge(OutboxError):
    """Internal: the dead-letter topic or the producer refused the message for its size."""


class DeadLetterProducer:
    """One idempotent producer, created on first use: most consumers never dead-letter anything."""

    def __init__(self, topic: str, group_id: str):
        self.topic = topic
        self.group_id = group_id
        self.timeout = conf.consumer_dead_letter_timeout()
        self._producer = None

    def send(self, msg, *, reason: str, error: str):
        """Produce and wait for the acknowledgement; ``DeadLetterError`` if it does not come."""
        ours = dead_letter_headers(msg, reason=reason, error=error, group_id=self.group_id)
        headers = original_headers(msg)
        for omitted in OMISSIONS:
            if headers is None and "headers" not in omitted:
                omitted = (*omitted, "headers")
            try:
                return self._produce(
                    key=None if "key" in omitted else msg.key(),
                    value=None if "value" in omitted else msg.value(),
                    headers=(headers if "headers" not in omitted else []) + ours + omission_headers(msg, omitted),
                )
            except _TooLarge as exc:
                logger.warning(
                    "Dead letter of %s[%s]@%s is too large for %s (%s) %s; leaving out more of it.",
                    msg.topic(),
                    msg.partition(),
                    msg.offset(),
                    self.topic,
                    exc,
                    f"without {','.join(omitted)}" if omitted else "as it is",
                )
                last = exc
        raise DeadLetterError(self.topic, f"even a dead letter of only its dlt_* headers is too large ({last})")

    def _produce(self, *, key, value, headers):
        delivery = {}
        try:
            self._get_producer().produce(
                self.topic,
                key=key,
                value=value,
                headers=headers,
                on_delivery=lambda err, delivered: delivery.update(error=err, message=delivered),
            )
            self._producer.flush(self.timeout + 5)
        except KafkaException as exc:
            if exc.args and exc.args[0].name() in TOO_LARGE_ERRORS:
                raise _TooLarge(exc.args[0].name()) from None
            raise DeadLetterError(self.topic, repr(exc)) from exc
        except Exception as exc:
            # BufferError and the like: the message is not stored.
            raise DeadLetterError(self.topic, repr(exc)) from exc
        if "error" not in delivery:
            raise DeadLetterError(self.topic, f"no acknowledgement within {self.timeout:g}s")
        if delivery["error"] is not None:
            if delivery["error"].name() in TOO_LARGE_ERRORS:
                raise _TooLarge(delivery["error"].name())
            raise DeadLetterError(self.topic, str(delivery["error"]))
        return delivery["message"]

    def close(self):
        if self._producer is not None:
            self._producer.flush(self.timeout)

    def _get_producer(self):
        if self._producer is None:
            self._producer = kafka_client(Producer, producer_config(**{"message.timeout.ms": int(self.timeout * 1000)}))
        return self._producer
