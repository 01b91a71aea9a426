"""
The exactly-once Kafka sink: every batch is one Kafka transaction of a lane's own
transactional producer, ended by a marker record that names the batch's rows (ADR 20).

``prepare(lane)`` runs before each batch. The first time after the relay took the lane (or
after a transaction whose outcome is unknown), it builds the lane's producer, whose
``init_transactions()`` fences every earlier producer of the lane and settles its last
transaction, and returns the row ids of the lane's last committed marker: the relay marks
those still pending, so a crash between the Kafka commit and the marking re-sends nothing.
"""

import logging
import time

from .. import conf
from ..kafka.config import full_topic, kafka_client, transactional_id, transactional_producer_config
from ..kafka.errors import log_client_error
from ..outbox.lanes import lane_of
from .errors import InfrastructureUnavailable
from .markers import MarkerReader, marker_value
from .sink import Delivery, KafkaSink, in_order

logger = logging.getLogger(__name__)


class ExactlyOnceKafkaSink(KafkaSink):
    """``KafkaSink`` whose batches are transactions; its own idempotent producer only probes the broker."""

    def __init__(self, lease_seconds: float):
        super().__init__(lease_seconds)
        self.lease_seconds = lease_seconds
        self.marker_topic = full_topic(conf.relay_transactions_topic())
        self.lanes = {}  # lane -> its transactional producer, initialized since the relay took the lane
        self.starting = {}  # lane -> a producer whose init_transactions() timed out: the next call resumes it
        self.reader = None

    def prepare(self, lane) -> list:
        if lane in self.lanes:
            return []
        from confluent_kafka import KafkaException

        producer = self.starting.pop(lane, None) or self._transactional_producer(lane)
        try:
            producer.init_transactions(self.delivery_timeout)
        except KafkaException as exc:
            producer.poll(0)  # serve its error callback, which names the cause (a refused login, say)
            if not exc.args[0].fatal():
                self.starting[lane] = producer
            raise InfrastructureUnavailable(f"Kafka did not start the lane's transactions: {_text(exc)}") from exc
        if self.reader is None:
            self.reader = MarkerReader(self.marker_topic, self.delivery_timeout)
        try:
            committed = self.reader.last_ids(_marker_key(lane), self.delivery_timeout)
        except InfrastructureUnavailable:
            self.reader.close()  # its consumers' metadata may be stale (a broker restart): new ones next time
            self.reader = None
            raise
        self.lanes[lane] = producer
        return committed

    def _transactional_producer(self, lane):
        from confluent_kafka import Producer

        return kafka_client(
            Producer,
            transactional_producer_config(
                lane,
                self.lease_seconds,
                **{"message.timeout.ms": int(self.delivery_timeout * 1000), "error_cb": log_client_error},
            ),
        )

    def forget(self, lane):
        self.lanes.pop(lane, None)
        self.starting.pop(lane, None)

    def publish(self, rows, deadline: float | None = None) -> list:
        """
        One transaction: the leading rows that encode and produce, then the marker naming them.
        All of them are acknowledged if it commits; if it does not, the row that failed (or
        else the first) carries the error, and nothing else is returned, so nothing is marked.
        """
        lane = lane_of(rows[0])
        producer = self.lanes[lane]
        deadline = self.deadline_or_default(deadline)
        from confluent_kafka import KafkaException

        order = []
        try:
            producer.begin_transaction()
            deliveries, order = self.produce_leading(producer, rows, deadline - self.delivery_timeout)
            produced = [
                row_id for row_id in order if deliveries.get(row_id) is None or deliveries[row_id].error is None
            ]
            if produced:
                producer.produce(self.marker_topic, key=_marker_key(lane), value=marker_value(produced))
                producer.flush(max(0.0, deadline - time.monotonic()))
            failed = next((d for d in in_order(deliveries, produced) if d.error is not None), None)
            if failed is None and produced:
                producer.commit_transaction(max(0.1, deadline - time.monotonic()))
                return in_order(deliveries, order)
            producer.abort_transaction(max(0.1, deadline - time.monotonic()))
            return [failed or deliveries[order[-1]]]
        except (KafkaException, SystemError) as exc:
            error = _kafka_exception(exc)
            self.forget(lane)  # its last transaction's outcome is unknown: the next prepare() settles it
            self.fatal_error = None  # the delivery reports' fatal error belonged to this producer
            return [Delivery(order[0] if order else rows[0].id, error=InfrastructureUnavailable(_text(error)))]

    def close(self):
        super().close()
        if self.reader is not None:
            self.reader.close()


def _marker_key(lane) -> bytes:
    """The lane's transactional id: unique to this service's lane, where the topic is shared by services."""
    return transactional_id(lane).encode()


def _kafka_exception(exc):
    """
    The ``KafkaException`` behind ``exc``. Once a transactional producer is fenced, confluent-kafka
    calls the delivery callbacks of its purged messages with that fatal error's exception still
    pending, so the first C call in a callback raises ``SystemError``, caused by it.
    """
    from confluent_kafka import KafkaException

    if isinstance(exc, SystemError) and not isinstance(exc.__cause__, KafkaException):
        raise exc
    return exc.__cause__ if isinstance(exc, SystemError) else exc


def _text(exc) -> str:
    error = exc.args[0] if exc.args else None
    return f"{error.name()}: {error.str()}" if hasattr(error, "name") else repr(exc)
