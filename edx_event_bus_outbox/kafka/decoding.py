"""
Confluent-framed Avro bytes -> a signal's ``send_event`` data, with the local schema as reader.
"""
import io
import json
from functools import lru_cache

import fastavro
from django.dispatch import receiver
from django.test.signals import setting_changed
from openedx_events.event_bus.avro.deserializer import AvroSignalDeserializer

from .config import schema_registry_client
from .framing import FRAME_SIZE, framed_schema_id


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
        schema_id = framed_schema_id(value)
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
