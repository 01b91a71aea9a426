"""
Confluent-framed Avro bytes -> a signal's ``send_event`` data, with the local schema as reader.
"""

import io
import json
from functools import cache, lru_cache

import fastavro
from django.dispatch import receiver
from django.test.signals import setting_changed
from fastavro.read import SchemaResolutionError
from openedx_events.event_bus.avro.deserializer import AvroSignalDeserializer

from ..exceptions import OutboxError
from .config import schema_registry_client
from .framing import FRAME_SIZE, framed_schema_id


class UnreadableWriterSchema(OutboxError, ValueError):
    """
    The value names a writer schema it cannot have been written with: one that is not Avro or
    does not parse, one of another record (another signal's, a key's), or one that does not
    resolve to the signal's schema. The message's fault, never the registry's.
    """


class TrailingBytes(OutboxError, ValueError):
    """A whole record was read and bytes are left: the value was not written with this schema."""


@lru_cache(maxsize=256)
def writer_schema(schema_id: int) -> dict:
    """
    A registered schema, fetched and parsed once per id: a registry never changes what an id
    means. Raises the registry client's errors (``SchemaRegistryError``, 404 for an unknown id),
    and ``UnreadableWriterSchema`` when what is registered is not an Avro schema.
    """
    registered = schema_registry_client().get_schema(schema_id)
    if (registered.schema_type or "AVRO") != "AVRO":
        raise UnreadableWriterSchema(f"writer schema {schema_id} is a {registered.schema_type} schema, not Avro")
    try:
        return fastavro.parse_schema(json.loads(registered.schema_str))
    except Exception as exc:  # noqa: BLE001  any parse failure means "not Avro"
        # json and fastavro raise ValueError, KeyError, TypeError... for text that is not Avro.
        raise UnreadableWriterSchema(
            f"writer schema {schema_id} does not parse as Avro ({type(exc).__name__})"
        ) from None


def record_name(schema):
    """The full name of a parsed record schema, or None for any other schema."""
    return schema.get("name") if isinstance(schema, dict) and schema.get("type") == "record" else None


class ValueReader:
    """
    A Confluent-framed Avro value -> the signal's ``send_event`` keyword arguments.

    The writer schema is the registered one the frame names; the local signal's schema is the
    reader schema, so values written by an older or newer producer go through Avro schema
    resolution, as edx-event-bus-kafka's ``AvroDeserializer(schema_str=<local schema>)`` does.
    It decodes with fastavro directly -- the library ``AvroDeserializer`` itself uses -- which
    skips that class's per-message subject, rule and schema-expansion bookkeeping (more costly
    than the decoding). edx schemas use neither data-contract rules nor schema references.
    See docs/decisions/0007-consumer-avro-decoding.rst.
    """

    def __init__(self, signal):
        self._signal_deserializer = AvroSignalDeserializer(signal)
        self._local_schema = fastavro.parse_schema(json.loads(self._signal_deserializer.schema_string()))
        self._name = record_name(self._local_schema)
        self._reader_by_id = {}  # writer schema id -> reader schema, None when it is the local schema

    def __call__(self, value: bytes) -> dict:
        schema_id = framed_schema_id(value)
        writer = writer_schema(schema_id)
        if schema_id not in self._reader_by_id:
            self._reader_by_id[schema_id] = self._reader_for(schema_id, writer)
        body = io.BytesIO(value)
        body.seek(FRAME_SIZE)
        try:
            record = fastavro.schemaless_reader(body, writer, self._reader_by_id[schema_id])
        except SchemaResolutionError as exc:
            raise UnreadableWriterSchema(f"writer schema {schema_id} does not resolve to {self._name}") from exc
        if body.tell() != len(value):
            raise TrailingBytes(f"{len(value) - body.tell()} byte(s) left after a whole record")
        return self._signal_deserializer.from_dict(record)

    def _reader_for(self, schema_id: int, writer):
        """
        fastavro matches records by their short name (``CloudEvent`` for every signal), so another
        signal's value of the same shape would resolve silently: the full names must be equal.
        """
        if record_name(writer) != self._name:
            raise UnreadableWriterSchema(
                f"writer schema {schema_id} is {record_name(writer) or 'not a record'}, not {self._name}"
            )
        # fastavro would compare the two schemas on every call to skip resolving identical ones.
        return None if writer == self._local_schema else self._local_schema


@cache
def value_reader(signal) -> ValueReader:
    """One reader per signal: building the local schema walks the signal's attrs classes."""
    return ValueReader(signal)


@receiver(setting_changed)
def _forget_cached_readers(**kwargs):
    value_reader.cache_clear()
    writer_schema.cache_clear()
