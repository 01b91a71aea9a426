"""
The Kafka side of the relay: encode rows, produce them, and wait for every delivery report.

Nothing here touches the database, so the relay never holds a transaction open while it
talks to the broker.
"""
from typing import NamedTuple, Optional

from openedx_events.tooling import OpenEdxPublicSignal

from ..kafka.config import producer_config
from ..kafka.headers import event_headers
from ..kafka.messages import encode_message
from .errors import InfrastructureUnavailable, PermanentEventError, classify_delivery_error, classify_encoding_error


class Delivery(NamedTuple):
    """What became of one row: acknowledged at (partition, offset), or an error of a known kind."""
    row_id: int
    partition: Optional[int] = None
    offset: Optional[int] = None
    error: Optional[Exception] = None


class KafkaSink:
    """One idempotent producer, reused for every batch of every lane."""

    def __init__(self, lease_seconds: float):
        from confluent_kafka import Producer  # pylint: disable=import-outside-toplevel
        # A batch must settle before its lease can lapse, or a standby could publish the same
        # rows first and ours would land after them (see the leases ADR).
        self.delivery_timeout = max(1.0, lease_seconds / 3)
        self.producer = Producer(producer_config(**{"message.timeout.ms": int(self.delivery_timeout * 1000)}))

    def publish(self, rows) -> list:
        """
        Produce rows in order and return one ``Delivery`` per row that reached the producer.

        Encoding stops at the first row that fails, so that no later row can overtake it;
        that row's ``Delivery`` carries the error and is last in the list.
        """
        deliveries = {}
        order = []
        for row in rows:
            order.append(row.id)
            try:
                self._produce(row.id, encode_row(row), deliveries)
            except (PermanentEventError, InfrastructureUnavailable) as exc:
                deliveries[row.id] = Delivery(row.id, error=exc)
                break
        self.producer.flush(self.delivery_timeout + 5)
        return [deliveries.get(row_id) or Delivery(row_id, error=InfrastructureUnavailable("no delivery report"))
                for row_id in order]

    def _produce(self, row_id, message, deliveries):
        def on_delivery(err, msg):
            if err is None:
                deliveries[row_id] = Delivery(row_id, msg.partition(), msg.offset())
            else:
                deliveries[row_id] = Delivery(row_id, error=classify_delivery_error(err))
        from confluent_kafka import KafkaException  # pylint: disable=import-outside-toplevel
        while True:
            try:
                self.producer.produce(message.topic, key=message.key, value=message.value,
                                      headers=message.headers, on_delivery=on_delivery)
                return
            except BufferError:
                self.producer.poll(0.1)  # local queue full: serve delivery reports, then retry
            except KafkaException as exc:  # refused before sending, e.g. larger than message.max.bytes
                raise classify_delivery_error(exc.args[0]) from exc

    def close(self):
        self.producer.flush(self.delivery_timeout + 5)


def encode_row(row):
    """The Kafka message for an outbox row, or a classified error."""
    try:
        signal = OpenEdxPublicSignal.get_signal_by_type(row.event_type)
    except KeyError as exc:
        raise PermanentEventError(f"no OpenEdxPublicSignal of type {row.event_type!r} exists in this service") from exc
    try:
        headers = event_headers(event_type=row.event_type, event_id=row.event_id, source=row.source,
                                time=row.event_time, minorversion=row.minorversion, sourcehost=row.sourcehost,
                                sourcelib=row.sourcelib)
        return encode_message(signal=signal, topic=row.topic, event_key_field=row.event_key_field,
                              event_key=row.event_key, payload=row.payload, headers=headers)
    except Exception as exc:  # pylint: disable=broad-except
        raise classify_encoding_error(exc) from exc
