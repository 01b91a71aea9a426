"""
A polled Kafka message -> (signal, event data, metadata), or ``UnusableMessage`` saying why not.

Cheap checks run first. Error texts name headers, sizes and schema ids, never payload data.
A registry that cannot be reached is *not* the message's fault: that raises
``RegistryUnavailable`` so that the caller waits and retries instead of discarding the message.
"""

from typing import NamedTuple

from confluent_kafka.schema_registry.error import SchemaRegistryError
from openedx_events.data import EventsMetadata
from openedx_events.tooling import OpenEdxPublicSignal

from ..kafka.decoding import UnreadableWriterSchema, value_reader, writer_schema
from ..kafka.errors import registry_has_no_such_schema
from ..kafka.framing import framed_schema_id, is_framed
from ..kafka.headers import MessageHeaderError, message_headers, metadata_from_headers
from .errors import RegistryUnavailable, UnusableMessage


class ConsumedEvent(NamedTuple):
    signal: OpenEdxPublicSignal
    data: dict
    metadata: EventsMetadata


def decode(msg) -> ConsumedEvent:
    try:
        metadata = metadata_from_headers(message_headers(msg))
    except MessageHeaderError as exc:
        raise UnusableMessage(_header_reason(exc), str(exc)) from None
    signal = signal_for(metadata.event_type)
    return ConsumedEvent(signal, _read_value(msg, signal), metadata)


def _header_reason(exc: MessageHeaderError) -> str:
    if exc.header == "ce_type" and exc.problem == "missing":
        return "missing_event_type"
    if exc.header == "ce_type" and exc.problem == "duplicated":
        return "multiple_event_types"
    return "bad_headers"


def signal_for(event_type: str) -> OpenEdxPublicSignal:
    """The signal named by the ``ce_type`` header."""
    try:
        return OpenEdxPublicSignal.get_signal_by_type(event_type)
    except KeyError:
        raise UnusableMessage(
            "unknown_event_type",
            f"no signal of type {event_type[:200]!r} is loaded in this service (newer openedx-events needed?)",
        ) from None


def _read_value(msg, signal):
    value = msg.value()
    if not value:
        raise UnusableMessage("empty_value", "message has no value")
    if not is_framed(value):
        raise UnusableMessage(
            "bad_framing",
            f"value is not schema-registry framed Avro (first byte {value[:1].hex()}, {len(value)} bytes)",
        )
    schema_id = framed_schema_id(value)
    _load_writer_schema(schema_id)
    try:
        return value_reader(signal)(value)
    except UnreadableWriterSchema as exc:
        raise UnusableMessage("wrong_schema", f"{exc}; the value cannot be read as {signal.event_type}") from None
    except Exception as exc:  # noqa: BLE001  any decoding failure makes the message unusable
        # Only the class: the message of an Avro or attrs error can quote the data it choked on.
        raise UnusableMessage(
            "undecodable_value",
            f"{len(value)}-byte value with writer schema {schema_id} cannot be read as "
            f"{signal.event_type} ({type(exc).__name__})",
        ) from None


def _load_writer_schema(schema_id: int):
    """
    Fetch (and so cache) the writer schema first, to tell "no such schema" (the message's
    fault) from "registry unreachable" (ours, and temporary).
    """
    try:
        writer_schema(schema_id)
    except SchemaRegistryError as exc:
        if registry_has_no_such_schema(exc):
            raise UnusableMessage("unknown_schema", f"writer schema id {schema_id} is not in the registry") from exc
        raise RegistryUnavailable(schema_id, exc) from exc
    except UnreadableWriterSchema as exc:
        raise UnusableMessage("wrong_schema", str(exc)) from None
    except Exception as exc:
        raise RegistryUnavailable(schema_id, exc) from exc
