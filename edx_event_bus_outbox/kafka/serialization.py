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


def _no_subject(ctx, record_name):  # pylint: disable=unused-argument
    return None


@lru_cache(maxsize=None)
def avro_value_deserializer(signal):
    """
    Framed Avro value -> the signal's ``send_event`` keyword arguments.

    The writer schema comes from the registry by the id in the frame; the local signal's
    schema is the reader schema, so an older or newer producer is read through Avro schema
    resolution, as edx-event-bus-kafka does. No subject is named: the reader schema is local,
    and without a subject the deserializer neither looks up "latest" versions nor runs
    Confluent data-contract rules (edx subjects have none), which would otherwise cost more
    per message than the Avro decoding itself. The writer schema is then cached by id alone.
    """
    # pylint: disable=import-outside-toplevel
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from openedx_events.event_bus.avro.deserializer import AvroSignalDeserializer

    signal_deserializer = AvroSignalDeserializer(signal)
    return AvroDeserializer(
        schema_registry_client(),
        schema_str=signal_deserializer.schema_string(),
        from_dict=lambda data, ctx: signal_deserializer.from_dict(data),
        conf={"subject.name.strategy": _no_subject},
    )


@receiver(setting_changed)
def _forget_cached_deserializers(**kwargs):  # pylint: disable=unused-argument
    avro_value_deserializer.cache_clear()
