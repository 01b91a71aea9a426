"""
Build the exact Kafka message for an event: topic, Avro key, Avro value and headers.

The relay and the ``on-commit`` mode both publish through ``encode_message``, so an event
is byte-identical whichever way it travels.
"""

from typing import NamedTuple

from confluent_kafka.serialization import MessageField, SerializationContext

from .config import full_topic
from .encoding import avro_serializers


class KafkaMessage(NamedTuple):
    topic: str
    key: bytes
    value: bytes
    headers: list


def encode_message(*, signal, topic, event_key_field, event_key, payload, headers) -> KafkaMessage:
    """
    Encode Avro-ready key and payload with the registry's framing; ``headers`` come from
    ``kafka.headers`` (``headers_from_metadata`` or ``event_headers``).

    May raise registry errors (retriable: registry down; permanent: incompatible schema) and
    Avro errors (permanent: the data no longer fits the schema).
    """
    name = full_topic(topic)
    key_serializer, value_serializer = avro_serializers(signal, event_key_field)
    key = key_serializer(event_key, SerializationContext(name, MessageField.KEY, headers))
    value = value_serializer(payload, SerializationContext(name, MessageField.VALUE, headers))
    return KafkaMessage(name, key, value, headers)


def encodes_offline(*, signal, topic, event_key_field) -> bool:
    """Whether encoding for ``topic`` needs no registry call: this process knows both schemas' ids for it."""
    name = full_topic(topic)
    return all(serializer.knows(name) for serializer in avro_serializers(signal, event_key_field))
