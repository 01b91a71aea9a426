"""
The exact stream entry edx-event-bus-redis writes for an event, so that its consumer reads ours.

edx-event-bus-redis 1.1 ``XADD``\\ s to ``{EVENT_BUS_TOPIC_PREFIX}-{topic}`` (or ``topic``) the
CloudEvents attributes under their bare names (``type``, ``id``, ``source``, ``time``,
``minorversion``, ``sourcehost``, ``sourcelib``: its ``MessageHeader`` instances, in their
order) and ``event_data``: openedx-events' ``serialize_event_data_to_bytes``, schemaless Avro
with no registry and no framing. ``tests/relay/test_redis_compat.py`` holds us to its bytes.
"""

import io
from typing import NamedTuple

import fastavro

from .. import conf
from ..kafka.schemas import parsed_value_schema


class StreamEntry(NamedTuple):
    stream: str
    fields: dict  # bytes -> bytes, in edx-event-bus-redis's order


def stream_name(topic: str) -> str:
    """edx-event-bus-redis's ``get_full_topic``: the same prefix rule as Kafka topics."""
    prefix = conf.topic_prefix()
    return f"{prefix}-{topic}" if prefix else topic


def event_data_bytes(signal, payload: dict) -> bytes:
    """``serialize_event_data_to_bytes`` for a payload already through ``AvroSignalSerializer.to_dict``."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, parsed_value_schema(signal), payload)
    return out.getvalue()


def stream_entry(
    *, signal, topic, payload, event_type, event_id, time, minorversion, source, sourcehost, sourcelib
) -> StreamEntry:
    """
    The entry for an event; ``time`` is an aware datetime, ``sourcelib`` the dotted version.

    May raise Avro errors when the payload no longer fits the signal's schema.
    """
    attributes = (
        ("type", event_type),
        ("id", str(event_id)),
        ("source", source),
        ("time", time.isoformat()),
        ("minorversion", str(minorversion)),
        ("sourcehost", sourcehost),
        ("sourcelib", sourcelib),
    )
    fields = {name.encode("utf-8"): value.encode("utf-8") for name, value in attributes}
    fields[b"event_data"] = event_data_bytes(signal, payload)
    return StreamEntry(stream_name(topic), fields)
