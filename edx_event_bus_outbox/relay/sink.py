"""
The Kafka side of the relay: encode rows, produce them, and wait for every delivery report.

Nothing here touches the database, so the relay never holds a transaction open while it
talks to the broker.
"""

import logging
import threading
import time
from typing import NamedTuple

from openedx_events.tooling import OpenEdxPublicSignal

from ..kafka.config import full_topic, kafka_client, producer_config
from ..kafka.errors import log_client_error
from ..kafka.headers import event_headers
from ..kafka.messages import encode_message, encodes_offline
from .errors import InfrastructureUnavailable, PermanentEventError, classify_delivery_error, classify_encoding_error

logger = logging.getLogger(__name__)


class Delivery(NamedTuple):
    """What became of one row: acknowledged at (partition, offset), or an error of a known kind."""

    row_id: int
    partition: int | None = None
    offset: int | None = None
    error: Exception | None = None


class AtLeastOnce:
    """The lane hooks of a sink that keeps nothing per lane: a row published but not marked is published again."""

    def prepare(self, lane) -> list:  # noqa: ARG002 (the hook's signature)
        """Before a lane's batch: the row ids a crash left published but unmarked, which this sink cannot know."""
        return []

    def forget(self, lane):
        """The relay no longer holds the lane."""


class KafkaSink(AtLeastOnce):
    """
    One idempotent producer, reused for every batch of every lane, and rebuilt after a fatal error.

    A batch never outlives its deadline (see the leases ADR): rows are encoded and produced
    only until a delivery timeout before it, so that every message produced has its delivery
    report by the deadline, and rows not reached stay pending for a later batch.
    """

    def __init__(self, lease_seconds: float):
        # The relay gives a batch two thirds of its lease: a third to encode and produce,
        # a third for the last message's delivery report (its ``message.timeout.ms``).
        self.delivery_timeout = max(1.0, lease_seconds / 3)
        self.fatal_error = None
        self.producer = self._new_producer()
        # Registry look-ups (with the registry client's own retries) cannot be interrupted, so
        # encoding runs on a thread of its own that the relay stops waiting for at the deadline.
        # A daemon thread: one stuck in a look-up must not hold up the process's exit.
        self.encoder = None

    def _new_producer(self):
        from confluent_kafka import Producer

        return kafka_client(
            Producer,
            producer_config(
                **{"message.timeout.ms": int(self.delivery_timeout * 1000), "error_cb": self._on_client_error}
            ),
        )

    def publish(self, rows, deadline: float | None = None) -> list:
        """
        Produce rows in order and return one ``Delivery`` per row that reached the producer.

        ``deadline`` (``time.monotonic()``) is when every delivery report must be in; by
        default two delivery timeouts from now. Encoding stops at the first row that fails,
        or that the deadline leaves no time for, so that no later row can overtake it; that
        row's ``Delivery`` carries the error and is last in the list.
        """
        deadline = self.deadline_or_default(deadline)
        deliveries, order = self.produce_leading(self.producer, rows, deadline - self.delivery_timeout)
        self.producer.flush(max(0.0, deadline - time.monotonic()))
        self._rebuild_if_fatal()
        return in_order(deliveries, order)

    def deadline_or_default(self, deadline):
        return time.monotonic() + 2 * self.delivery_timeout if deadline is None else deadline

    def produce_leading(self, producer, rows, produce_until):
        """
        Encode and produce rows in order until the first that fails: ``(deliveries by row id,
        ids in order)``. The failed row's ``Delivery`` is in the dict at once; the others arrive
        with their delivery reports.
        """
        deliveries, order = {}, []
        encoded = (
            _encode_leading(rows, produce_until) if _encodes_offline(rows) else self._encode_until(rows, produce_until)
        )
        for row, message in encoded:
            order.append(row.id)
            try:
                if isinstance(message, Exception):
                    raise message
                self._produce(producer, row.id, message, deliveries, produce_until)
            except (PermanentEventError, InfrastructureUnavailable) as exc:
                deliveries[row.id] = Delivery(row.id, error=exc)
                break
        return deliveries, order

    def _encode_until(self, rows, until):
        """
        ``(row, message or classified error)`` for the leading rows encoded before ``until``.

        If the deadline passes first, the row being encoded gets an ``InfrastructureUnavailable``
        (the registry is too slow) and the rows after it are left out: they stay pending. One
        encoder at a time: a batch waits (until its own deadline) for one still stuck in a look-up.
        """
        encoded, stop = [], threading.Event()

        def encode_all():
            for item in _encode_leading(rows, stop=stop):
                encoded.append(item)  # one by one: the relay reads what is done when the deadline comes

        if self.encoder is not None:
            self.encoder.join(timeout=max(0.0, until - time.monotonic()))
        if self.encoder is None or not self.encoder.is_alive():
            self.encoder = threading.Thread(target=encode_all, name="outbox-encode", daemon=True)
            self.encoder.start()
            self.encoder.join(timeout=max(0.0, until - time.monotonic()))
            if not self.encoder.is_alive():
                return encoded
        stop.set()
        done = list(encoded)
        if len(done) < len(rows) and not (done and isinstance(done[-1][1], Exception)):
            done.append(
                (
                    rows[len(done)],
                    InfrastructureUnavailable(
                        "the batch's deadline passed while encoding (schema registry slow or unreachable)"
                    ),
                )
            )
        return done

    def _produce(self, producer, row_id, message, deliveries, until):
        def on_delivery(err, msg):
            if err is None:
                deliveries[row_id] = Delivery(row_id, msg.partition(), msg.offset())
            else:
                deliveries[row_id] = Delivery(row_id, error=self._classify(err))

        from confluent_kafka import KafkaException

        while True:
            try:
                producer.produce(
                    message.topic,
                    key=message.key,
                    value=message.value,
                    headers=message.headers,
                    on_delivery=on_delivery,
                )
                return
            except BufferError as exc:
                if time.monotonic() >= until:
                    raise InfrastructureUnavailable("the producer's queue stayed full until the deadline") from exc
                producer.poll(0.1)  # local queue full: serve delivery reports, then retry
            except KafkaException as exc:  # refused before sending, e.g. larger than message.max.bytes
                raise self._classify(exc.args[0]) from exc

    def _classify(self, kafka_error):
        if kafka_error.fatal():
            self.fatal_error = kafka_error
            return InfrastructureUnavailable(f"Kafka producer fatal error: {kafka_error.name()}: {kafka_error.str()}")
        return classify_delivery_error(kafka_error)

    def _on_client_error(self, kafka_error):
        """librdkafka's ``error_cb``: a fatal error needs a new producer; the others retry by themselves."""
        if kafka_error.fatal():
            self.fatal_error = kafka_error
        else:
            log_client_error(kafka_error)

    def _rebuild_if_fatal(self):
        """A producer that hit a fatal error (e.g. of the idempotence state) never sends again: replace it."""
        if self.fatal_error is None:
            return
        logger.error(
            "Outbox relay's Kafka producer hit a fatal error (%s: %s); replacing it with a new producer",
            self.fatal_error.name(),
            self.fatal_error.str(),
        )
        self.fatal_error = None
        self.producer = self._new_producer()

    def can_reach(self, topic) -> bool:
        """Whether the broker answers this producer (a metadata request for the topic): probed before retaking lanes."""
        from confluent_kafka import KafkaException

        self._rebuild_if_fatal()
        try:
            self.producer.list_topics(topic=full_topic(topic), timeout=self.delivery_timeout)
            return True
        except KafkaException:
            return False

    def close(self):
        self.producer.flush(self.delivery_timeout + 5)


def in_order(deliveries, order) -> list:
    """One ``Delivery`` per produced row, in order; a row without a delivery report failed by the deadline."""
    return [
        deliveries.get(row_id)
        or Delivery(row_id, error=InfrastructureUnavailable("no delivery report before the batch's deadline"))
        for row_id in order
    ]


def _encodes_offline(rows) -> bool:
    """
    Whether encoding the rows needs no registry look-up, which nothing can interrupt: then they
    are encoded on the relay's own thread, each produced as soon as it is encoded.
    """
    one_of_each_kind = {(row.event_type, row.topic, row.event_key_field): row for row in rows}.values()
    try:
        return all(
            encodes_offline(signal=row_signal(row), topic=row.topic, event_key_field=row.event_key_field)
            for row in one_of_each_kind
        )
    except PermanentEventError:  # a type this service does not know: the encoder thread classifies it
        return False


def _encode_leading(rows, until=None, stop=None):
    """
    ``(row, message or classified error)`` for the rows in order, ending after the first error,
    or when ``stop`` is set, or with ``InfrastructureUnavailable`` for the row that ``until`` leaves no time for.
    """
    for row in rows:
        if stop is not None and stop.is_set():
            return
        if until is not None and time.monotonic() >= until:
            yield row, InfrastructureUnavailable("the batch's deadline passed while encoding")
            return
        try:
            yield row, encode_row(row)
        except (PermanentEventError, InfrastructureUnavailable) as exc:
            yield row, exc
            return


def row_signal(row):
    """The row's signal in this service, or a ``PermanentEventError`` (a type only newer code knows)."""
    try:
        return OpenEdxPublicSignal.get_signal_by_type(row.event_type)
    except KeyError as exc:
        raise PermanentEventError(f"no OpenEdxPublicSignal of type {row.event_type!r} exists in this service") from exc


def cloud_event_attributes(row) -> dict:
    """The row's CloudEvents attributes, as ``event_headers`` (Kafka) and ``stream_entry`` (Redis) take them."""
    return {
        "event_type": row.event_type,
        "event_id": row.event_id,
        "source": row.source,
        "time": row.event_time,
        "minorversion": row.minorversion,
        "sourcehost": row.sourcehost,
        "sourcelib": row.sourcelib,
    }


def encode_row(row):
    """The Kafka message for an outbox row, or a classified error."""
    signal = row_signal(row)
    try:
        headers = event_headers(**cloud_event_attributes(row))
        return encode_message(
            signal=signal,
            topic=row.topic,
            event_key_field=row.event_key_field,
            event_key=row.event_key,
            payload=row.payload,
            headers=headers,
        )
    except Exception as exc:  # noqa: BLE001  any encoding failure is classified
        raise classify_encoding_error(exc) from exc
