"""
What a Kafka or schema registry error says about its cause: this message, or the service.

The relay and the consumer act on the answer differently (a dead row, a dead-lettered
message, a retry), so the classification itself is written once, here.
"""

import logging
import time

from confluent_kafka.schema_registry.error import SchemaRegistryError

logger = logging.getLogger(__name__)

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


# Client errors that no retry fixes: credentials, certificates or ACLs are wrong.
OPERATOR_KAFKA_ERRORS = frozenset(
    {
        "_AUTHENTICATION",
        "_SSL",
        "SASL_AUTHENTICATION_FAILED",
        "CLUSTER_AUTHORIZATION_FAILED",
        "TOPIC_AUTHORIZATION_FAILED",
        "GROUP_AUTHORIZATION_FAILED",
    }
)
# librdkafka reports a refused login on every reconnect (every few seconds): log it this seldom.
OPERATOR_ERROR_LOG_SECONDS = 60.0
_operator_error_logged_at = {}


def log_client_error(kafka_error):
    """
    librdkafka's ``error_cb`` for every client the package builds. It retries connection errors by
    itself, so most need no action; a refused login or certificate does, and is logged as an
    error (librdkafka's text names the broker and mechanism, never a secret).
    """
    name = kafka_error.name()
    if name not in OPERATOR_KAFKA_ERRORS:
        logger.debug("Kafka client error (librdkafka retries): %s", kafka_error)
        return
    now = time.monotonic()
    if now - _operator_error_logged_at.get(name, -OPERATOR_ERROR_LOG_SECONDS) < OPERATOR_ERROR_LOG_SECONDS:
        return
    _operator_error_logged_at[name] = now
    logger.error(
        "Kafka refused this client: %s: %s. Check the credentials, certificates and ACLs in "
        "EVENT_BUS_OUTBOX_KAFKA_CONFIG (or EVENT_BUS_KAFKA_API_KEY/_SECRET); the client keeps retrying.",
        name,
        kafka_error.str(),
    )
