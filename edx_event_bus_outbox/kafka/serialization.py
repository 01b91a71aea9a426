"""
Avro schemas, event keys and registry-backed serializers for openedx-events signals.

The rules (key lookup, key sub-schema, subject naming) are edx-event-bus-kafka's, so keys
and values are byte-identical and land on the same partitions.
"""
import io
import json
from functools import lru_cache

import fastavro
from django.dispatch import receiver
from django.test.signals import setting_changed
from openedx_events.event_bus.avro.deserializer import AvroSignalDeserializer
from openedx_events.event_bus.avro.serializer import AvroSignalSerializer

from .config import schema_registry_client


class EventKeyNotFound(LookupError):
    """The dotted ``event_key_field`` path does not exist in the event data."""


@lru_cache(maxsize=None)
def signal_serializer(signal) -> AvroSignalSerializer:
    """Building a signal's Avro schema walks its attrs classes; do it once per signal."""
    return AvroSignalSerializer(signal)


def extract_event_key(event_data, event_key_field: str):
    """Follow the dotted path through dict keys or object attributes, as edx-event-bus-kafka does."""
    current = event_data
    for name in event_key_field.split("."):
        if isinstance(current, dict):
            if name not in current:
                raise EventKeyNotFound(f"key path {event_key_field!r} failed at {name!r} (no such dict key)")
            current = current[name]
        else:
            if not hasattr(current, name):
                raise EventKeyNotFound(f"key path {event_key_field!r} failed at {name!r} (no such attribute)")
            current = getattr(current, name)
    return current


@lru_cache(maxsize=None)
def key_schema(signal, event_key_field: str) -> dict:
    """The Avro field entry found by descending ``event_key_field`` through the signal's schema."""
    schema = signal_serializer(signal).schema
    for name in event_key_field.split("."):
        if "fields" not in schema:
            schema = schema.get("type") if isinstance(schema.get("type"), dict) else {}
        matching = [field for field in schema.get("fields", []) if field["name"] == name]
        if not matching:
            raise EventKeyNotFound(f"key path {event_key_field!r} failed at {name!r} (not in the Avro schema)")
        schema = matching[0]
    return schema


def key_schema_string(signal, event_key_field: str) -> str:
    """Dumped with ``sort_keys`` like ``AvroSignalSerializer.schema_string``; the registry sees this text."""
    return json.dumps(key_schema(signal, event_key_field), sort_keys=True)


class RegisteredAvroSerializer:
    """
    Confluent-framed Avro for one schema, registered through ``AvroSerializer`` once per topic.

    The first message of a topic goes through confluent-kafka's ``AvroSerializer``, which
    registers (or looks up) the subject and returns the framed bytes; their 5-byte frame
    (magic byte and schema id) is then kept, and later messages are framed here with the same
    fastavro writer. Per message that skips the serializer's subject, rule and lock
    bookkeeping, which cost several times the Avro encoding itself. The bytes are identical
    (the compatibility tests compare them with edx-event-bus-kafka's).
    """

    def __init__(self, client, schema_string: str):
        # pylint: disable=import-outside-toplevel
        from confluent_kafka.schema_registry import topic_record_subject_name_strategy
        from confluent_kafka.schema_registry.avro import AvroSerializer

        self.serializer = AvroSerializer(client, schema_string,
                                         conf={"subject.name.strategy": topic_record_subject_name_strategy})
        self.parsed_schema = fastavro.parse_schema(json.loads(schema_string))
        self.frame_by_topic = {}

    def __call__(self, datum, ctx) -> bytes:
        frame = self.frame_by_topic.get(ctx.topic)
        if frame is None:
            framed = self.serializer(datum, ctx)
            self.frame_by_topic[ctx.topic] = framed[:5]
            return framed
        out = io.BytesIO()
        out.write(frame)
        fastavro.schemaless_writer(out, self.parsed_schema, datum)
        return out.getvalue()


@lru_cache(maxsize=None)
def avro_serializers(signal, event_key_field: str):
    """
    ``(key_serializer, value_serializer)`` taking Avro-ready data (already through ``to_dict``).

    Cached per signal and key path: after a topic's first event only the Avro encoding remains.
    """
    client = schema_registry_client()
    return (RegisteredAvroSerializer(client, key_schema_string(signal, event_key_field)),
            RegisteredAvroSerializer(client, signal_serializer(signal).schema_string()))


@receiver(setting_changed)
def _forget_cached_serializers(**kwargs):  # pylint: disable=unused-argument
    avro_serializers.cache_clear()


FRAME_SIZE = 5  # Confluent framing: magic byte 0, then the 4-byte big-endian schema id


@lru_cache(maxsize=256)
def writer_schema(schema_id: int) -> dict:
    """
    A registered schema, fetched and parsed once per id: a registry never changes what an id
    means. Raises the registry client's errors (``SchemaRegistryError``, 404 for an unknown id).
    """
    return fastavro.parse_schema(json.loads(schema_registry_client().get_schema(schema_id).schema_str))


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
        self._reader_by_id = {}  # writer schema id -> reader schema, None when it is the local schema

    def __call__(self, value: bytes) -> dict:
        schema_id = int.from_bytes(value[1:FRAME_SIZE], "big")
        writer = writer_schema(schema_id)
        if schema_id not in self._reader_by_id:
            # fastavro would compare the two schemas on every call to skip resolving identical ones.
            self._reader_by_id[schema_id] = None if writer == self._local_schema else self._local_schema
        record = fastavro.schemaless_reader(io.BytesIO(value[FRAME_SIZE:]), writer, self._reader_by_id[schema_id])
        return self._signal_deserializer.from_dict(record)


@lru_cache(maxsize=None)
def value_reader(signal) -> ValueReader:
    """One reader per signal: building the local schema walks the signal's attrs classes."""
    return ValueReader(signal)


@receiver(setting_changed)
def _forget_cached_readers(**kwargs):  # pylint: disable=unused-argument
    value_reader.cache_clear()
    writer_schema.cache_clear()
