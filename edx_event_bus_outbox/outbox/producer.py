"""
``OutboxEventProducer``: what ``EVENT_BUS_PRODUCER = "edx_event_bus_outbox.create_producer"`` returns.

``send()`` runs inside the request that fired the signal, so it does the least that keeps
the promise: serialize once, validate, and INSERT one row on the caller's connection. The
row therefore commits or rolls back with the caller's own data.

openedx-events calls ``send()`` through ``send_robust()``, which logs and swallows what it
raises, so ``send()`` must never leave the caller's transaction worse than it found it
(ADR 4): whatever can be known before the INSERT is checked first and raised as
``EventValidationError``, and a refused INSERT leaves the transaction as it was.

Called with no transaction open on the outbox database, or from an ``on_commit`` callback,
``send()`` still writes the row, and says that it is not atomic with the caller's data
(``atomicity.py``).
"""

import logging

from django.db import transaction
from openedx_events.event_bus import EventBusProducer

from .. import conf
from ..exceptions import EventValidationError
from ..kafka.avro_dict import to_avro_dict
from ..kafka.headers import dotted_version, headers_from_metadata
from ..kafka.schemas import EventKeyNotFound, extract_event_key
from . import validation
from .atomicity import check_send_is_atomic
from .insert import insert_event
from .lanes import lane_columns
from .modes import mode_for

logger = logging.getLogger(__name__)


class OutboxEventProducer(EventBusProducer):
    """Writes events to the outbox table (``outbox`` mode) or publishes them after commit (``on-commit``)."""

    def send(self, *, signal, topic, event_key_field, event_data, event_metadata) -> None:
        payload, event_key, payload_json = serialize_event(signal, topic, event_key_field, event_data, event_metadata)
        alias = conf.database_alias()
        if mode_for(signal.event_type, topic) == conf.MODE_ON_COMMIT:
            self._publish_on_commit(signal, topic, event_key_field, event_key, payload, event_metadata, alias)
            return
        row = {
            "event_id": event_metadata.id,
            "event_type": event_metadata.event_type,
            "topic": topic,
            "event_key_field": event_key_field,
            "event_key": event_key,
            "event_time": event_metadata.time,
            "minorversion": event_metadata.minorversion,
            "source": event_metadata.source,
            "sourcehost": event_metadata.sourcehost,
            "sourcelib": dotted_version(event_metadata.sourcelib),
            **lane_columns(topic, event_key),
        }
        problem = validation.metadata_problem(row)
        if problem:
            raise EventValidationError(event_type=signal.event_type, topic=topic, field=problem[0], problem=problem[1])
        insert_event(alias, payload_json, **row)
        check_send_is_atomic(signal.event_type, topic, event_metadata.id, alias)
        logger.debug("Outbox row written: event_id=%s type=%s topic=%s", event_metadata.id, signal.event_type, topic)

    @staticmethod
    def _publish_on_commit(signal, topic, event_key_field, event_key, payload, metadata, alias):
        from .on_commit import publish

        transaction.on_commit(
            lambda: publish(
                signal=signal,
                topic=topic,
                event_key_field=event_key_field,
                event_key=event_key,
                payload=payload,
                metadata=metadata,
            ),
            using=alias,
        )

    def prepare_for_shutdown(self):
        from .on_commit import flush

        flush()


def serialize_event(signal, topic, event_key_field, event_data, event_metadata):
    """
    ``(payload, key, payload_json)``: Avro-ready, validated, and the JSON text to store.

    Or ``EventValidationError`` naming the field; raised ``from None``, because Django logs the
    whole chain and the errors of openedx-events and fastavro quote values.
    """

    def invalid(field, problem):
        return EventValidationError(event_type=signal.event_type, topic=topic, field=field, problem=problem)

    try:
        payload = to_avro_dict(signal, event_data)
    except Exception as exc:  # noqa: BLE001  openedx-events raises bare Exception
        raise invalid(
            validation.unserializable_field(event_data) or "(event)", f"cannot be serialized ({type(exc).__name__})"
        ) from None
    problem = validation.payload_problem(signal, payload)
    if problem:
        raise invalid(*problem) from None
    try:
        event_key = extract_event_key(payload, event_key_field)
        problem = validation.key_problem(signal, event_key_field, event_key)
    except EventKeyNotFound as exc:
        raise invalid(event_key_field, f"was not found: {exc}") from None
    if problem:
        raise invalid(*problem) from None
    payload_json, problem = validation.payload_json(payload)
    problem = problem or validation.size_problem(
        signal, event_key_field, payload, event_key, payload_json, lambda: headers_from_metadata(event_metadata)
    )
    if problem:
        raise invalid(*problem) from None
    return payload, event_key, payload_json


def create_producer() -> OutboxEventProducer:
    """The value for ``EVENT_BUS_PRODUCER``; openedx-events calls it once and caches the result."""
    return OutboxEventProducer()
