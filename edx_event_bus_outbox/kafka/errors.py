"""
What a Kafka or schema registry error says about its cause: this message, or the service.

The relay and the consumer act on the answer differently (a dead row, a dead-lettered
message, a retry), so the classification itself is written once, here.
"""

from confluent_kafka.schema_registry.error import SchemaRegistryError

# Delivery-report and produce() errors that mean "this message", not "the cluster".
PERMANENT_KAFKA_ERRORS = frozenset(
    {
        "MSG_SIZE_TOO_LARGE",
        "INVALID_RECORD",
        "CORRUPT_MESSAGE",
        "INVALID_MSG",
        "_MSG_SIZE_TOO_LARGE",
        "RECORD_LIST_TOO_LARGE",
        "_INVALID_ARG",
    }
)

# Registry answers that reject the schema itself (Confluent: 409 incompatible, 422 invalid).
SCHEMA_REJECTED_STATUSES = frozenset({409, 422})


def kafka_error_is_permanent(kafka_error) -> bool:
    """Whether a ``KafkaError`` is about the message itself, so retrying it cannot help."""
    return kafka_error.name() in PERMANENT_KAFKA_ERRORS


def registry_rejected_schema(exc: Exception) -> bool:
    """The registry answered that the schema is incompatible or invalid."""
    return isinstance(exc, SchemaRegistryError) and exc.http_status_code in SCHEMA_REJECTED_STATUSES


def registry_has_no_such_schema(exc: Exception) -> bool:
    """The registry answered that the schema id (or subject) does not exist."""
    return isinstance(exc, SchemaRegistryError) and exc.http_status_code == 404
