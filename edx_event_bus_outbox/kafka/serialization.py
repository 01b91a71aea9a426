"""
Avro schemas, event keys and registry-backed serializers for openedx-events signals.

The rules (key lookup, key sub-schema, subject naming) are edx-event-bus-kafka's, so keys
and values are byte-identical and land on the same partitions.
"""
import json
from functools import lru_cache

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


@lru_cache(maxsize=None)
def avro_serializers(signal, event_key_field: str):
    """
    ``(key_serializer, value_serializer)`` taking Avro-ready data (already through ``to_dict``).

    Cached per signal and key path: a serializer remembers its schema id, so after the first
    event only the Avro encoding remains.
    """
    # pylint: disable=import-outside-toplevel
    from confluent_kafka.schema_registry import topic_record_subject_name_strategy
    from confluent_kafka.schema_registry.avro import AvroSerializer

    strategy = {"subject.name.strategy": topic_record_subject_name_strategy}
    client = schema_registry_client()
    key_serializer = AvroSerializer(client, key_schema_string(signal, event_key_field), conf=strategy)
    value_serializer = AvroSerializer(client, signal_serializer(signal).schema_string(), conf=strategy)
    return key_serializer, value_serializer


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
