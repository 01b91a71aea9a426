"""
Build the exact Kafka message for an event: topic, Avro key, Avro value and headers.

The relay and the ``on-commit`` mode both publish through ``encode_message``, so an event
is byte-identical whichever way it travels.
"""
from typing import NamedTuple

from .config import full_topic
from .headers import headers_from_metadata
from .serialization import avro_serializers


class KafkaMessage(NamedTuple):
    topic: str
    key: bytes
    value: bytes
    headers: list


def encode_message(*, signal, topic, event_key_field, event_key, payload, metadata) -> KafkaMessage:
    """
    Encode Avro-ready key and payload with the registry's framing.

    May raise registry errors (retriable: registry down; permanent: incompatible schema) and
    Avro errors (permanent: the data no longer fits the schema).
    """
    # pylint: disable=import-outside-toplevel
    from confluent_kafka.serialization import MessageField, SerializationContext

    name = full_topic(topic)
    headers = headers_from_metadata(metadata)
    key_serializer, value_serializer = avro_serializers(signal, event_key_field)
    key = key_serializer(event_key, SerializationContext(name, MessageField.KEY, headers))
    value = value_serializer(payload, SerializationContext(name, MessageField.VALUE, headers))
    return KafkaMessage(name, key, value, headers)
