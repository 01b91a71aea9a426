"""
A polled Kafka message -> (signal, event data, metadata), or ``UnusableMessage`` saying why not.

Cheap checks run first. Error texts name headers, sizes and schema ids, never payload data.
A registry that cannot be reached is *not* the message's fault: that raises
``RegistryUnavailable`` so that the caller waits and retries instead of discarding the message.
"""
from typing import NamedTuple

from openedx_events.data import EventsMetadata
from openedx_events.tooling import OpenEdxPublicSignal

from ..kafka.config import schema_registry_client
from ..kafka.headers import MessageHeaderError, header_values, metadata_from_headers
from ..kafka.serialization import avro_value_deserializer
from .errors import RegistryUnavailable, UnusableMessage

CONFLUENT_MAGIC_BYTE = 0
FRAME_HEADER_SIZE = 5  # magic byte + 4-byte big-endian schema id


class ConsumedEvent(NamedTuple):
    signal: OpenEdxPublicSignal
    data: dict
    metadata: EventsMetadata


def decode(msg) -> ConsumedEvent:
    headers = msg.headers() or []
    signal = signal_for(headers)
    try:
        metadata = metadata_from_headers(headers)
    except MessageHeaderError as exc:
        raise UnusableMessage("bad_headers", str(exc)) from exc
    return ConsumedEvent(signal, _read_value(msg, signal), metadata)


def signal_for(headers) -> OpenEdxPublicSignal:
    """The signal named by the one ``ce_type`` header."""
    try:
        event_types = header_values(headers, "ce_type")
    except UnicodeDecodeError as exc:
        raise UnusableMessage("bad_headers", "the 'ce_type' header is not UTF-8") from exc
    if not event_types:
        raise UnusableMessage("missing_event_type", "message has no 'ce_type' header; cannot tell which signal to send")
    if len(event_types) > 1:
        raise UnusableMessage("multiple_event_types", f"message has {len(event_types)} 'ce_type' headers; expected one")
    try:
        return OpenEdxPublicSignal.get_signal_by_type(event_types[0])
    except KeyError as exc:
        raise UnusableMessage(
            "unknown_event_type",
            f"no signal of type {event_types[0][:200]!r} is loaded in this service (newer openedx-events needed?)",
        ) from exc


def _read_value(msg, signal):
    from confluent_kafka.serialization import MessageField, SerializationContext  # pylint: disable=import-outside-toplevel

    value = msg.value()
    if not value:
        raise UnusableMessage("empty_value", "message has no value")
    if len(value) <= FRAME_HEADER_SIZE or value[0] != CONFLUENT_MAGIC_BYTE:
        raise UnusableMessage(
            "bad_framing",
            f"value is not schema-registry framed Avro (first byte {value[:1].hex()}, {len(value)} bytes)",
        )
    schema_id = int.from_bytes(value[1:FRAME_HEADER_SIZE], "big")
    _fetch_writer_schema(schema_id)
    # No headers in the context: the deserializer would otherwise prefer a schema id from a
    # ``__value_schema_id`` header over the frame checked above.
    context = SerializationContext(msg.topic(), MessageField.VALUE, headers=None)
    try:
        return avro_value_deserializer(signal)(value, context)
    except Exception as exc:  # pylint: disable=broad-except
        # Only the class: the message of an Avro or attrs error can quote the data it choked on.
        raise UnusableMessage(
            "undecodable_value",
            f"{len(value)}-byte value with writer schema {schema_id} cannot be read as "
            f"{signal.event_type} ({type(exc).__name__})",
        ) from exc


def _fetch_writer_schema(schema_id: int):
    """
    Fetch (and so cache) the writer schema before decoding, to tell "no such schema" (the
    message's fault) from "registry unreachable" (ours, and temporary). The deserializer then
    finds it in the client's cache.
    """
    from confluent_kafka.schema_registry.error import SchemaRegistryError  # pylint: disable=import-outside-toplevel

    try:
        schema_registry_client().get_schema(schema_id)
    except SchemaRegistryError as exc:
        if exc.http_status_code == 404:
            raise UnusableMessage("unknown_schema", f"writer schema id {schema_id} is not in the schema registry") from exc
        raise RegistryUnavailable(schema_id, exc) from exc
    except Exception as exc:  # pylint: disable=broad-except
        raise RegistryUnavailable(schema_id, exc) from exc
