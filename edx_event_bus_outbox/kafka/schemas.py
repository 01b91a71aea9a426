"""
Avro schemas and event keys of openedx-events signals, by edx-event-bus-kafka's rules.

The rules (key lookup, key sub-schema) are edx-event-bus-kafka's, so keys and values are
byte-identical and land on the same partitions. ``encoding`` and ``decoding`` build on them.
"""

import json
from functools import cache

import fastavro
from openedx_events.event_bus.avro.serializer import AvroSignalSerializer

from ..exceptions import OutboxError


class EventKeyNotFound(OutboxError, LookupError):
    """The dotted ``event_key_field`` path does not exist in the event data."""


@cache
def signal_serializer(signal) -> AvroSignalSerializer:
    """Building a signal's Avro schema walks its attrs classes; do it once per signal."""
    return AvroSignalSerializer(signal)


@cache
def parsed_value_schema(signal):
    """The signal's Avro schema parsed by fastavro, for validating and writing its payloads."""
    return fastavro.parse_schema(signal_serializer(signal).schema)


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


@cache
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
