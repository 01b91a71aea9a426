"""
The ``on-commit`` mode: publish straight to Kafka once the caller's transaction commits.

ADR 0015's lighter mode. It never publishes for a rolled-back transaction, but an event is
lost if the process dies before delivery or the broker is unreachable; errors are logged
(without payload) and counted, never raised into the request.
"""

import logging
import threading

from .. import conf
from ..kafka.config import kafka_client, producer_config
from ..kafka.headers import headers_from_metadata
from ..kafka.messages import encode_message

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_producer = None


def _get_producer():
    """One librdkafka producer per process, with a thread that serves its delivery reports."""
    global _producer  # noqa: PLW0603  one producer per process, made on first use
    with _lock:
        if _producer is None:
            from confluent_kafka import Producer

            _producer = kafka_client(Producer, producer_config())
            threading.Thread(target=_poll_forever, args=(_producer,), name="outbox-on-commit-poll", daemon=True).start()
        return _producer


def _poll_forever(producer):
    while True:
        producer.poll(1.0)


def publish(*, signal, topic, event_key_field, event_key, payload, metadata):
    """Encode and hand one event to librdkafka; never raises into the caller."""
    try:
        message = encode_message(
            signal=signal,
            topic=topic,
            event_key_field=event_key_field,
            event_key=event_key,
            payload=payload,
            headers=headers_from_metadata(metadata),
        )
        _get_producer().produce(
            message.topic,
            key=message.key,
            value=message.value,
            headers=message.headers,
            on_delivery=lambda err, msg: _report(err, msg, metadata),
        )
    except Exception:
        logger.exception(
            "on-commit event not published: event_id=%s type=%s topic=%s", metadata.id, metadata.event_type, topic
        )


def _report(err, msg, metadata):
    if err is not None:
        logger.error(
            "on-commit event not delivered: event_id=%s type=%s topic=%s error=%s",
            metadata.id,
            metadata.event_type,
            msg.topic(),
            err,
        )
    elif conf.audit_logging_enabled():
        logger.info(
            "on-commit event delivered: event_id=%s type=%s topic=%s partition=%s offset=%s",
            metadata.id,
            metadata.event_type,
            msg.topic(),
            msg.partition(),
            msg.offset(),
        )


def flush(timeout: float = 10.0) -> int:
    """Wait for outstanding deliveries; returns how many are still undelivered."""
    with _lock:
        producer = _producer
    return producer.flush(timeout) if producer is not None else 0
