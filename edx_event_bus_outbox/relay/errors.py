"""
Sorting publish failures into the two kinds the relay treats differently.

* Retriable: the infrastructure is unavailable (broker, registry, network). The event is
  fine; the lane waits with backoff and nothing counts against the event.
* Permanent: this event can never be published as it is (schema incompatible, too large,
  its signal no longer exists). It counts an attempt, and after enough it goes ``dead``.
"""

from confluent_kafka.schema_registry.error import SchemaRegistryError

from ..exceptions import OutboxError
from ..kafka.errors import kafka_error_is_permanent, registry_rejected_schema
from ..redis_streams.client import describe_redis_error


class RelayError(OutboxError):
    """
    A classified failure. ``str()`` is the whole text, kept in the row's ``last_error``;
    ``log_text`` is what the logs may say. They differ for errors raised while encoding an
    event: Avro errors quote the value that did not fit (``'learner@example.com' is not in
    list``), and logs carry no event data.
    """

    def __init__(self, message: str, *, log_text: str = None):
        super().__init__(message)
        self.log_text = log_text or message


class PermanentEventError(RelayError):
    """This event cannot be published; retrying the same bytes will fail the same way."""


class InfrastructureUnavailable(RelayError):
    """Kafka, the schema registry or Redis cannot be reached; try again later."""


def classify_encoding_error(exc) -> Exception:
    """Map an exception from Avro encoding or the registry to one of the two kinds."""
    if registry_rejected_schema(exc):
        return PermanentEventError(f"schema registry rejected the schema: {exc}")
    if isinstance(exc, SchemaRegistryError):
        return InfrastructureUnavailable(f"schema registry error: {exc}")
    without_data = f"{type(exc).__name__} while encoding the event (the text may quote event data: see last_error)"
    if isinstance(exc, (ValueError, TypeError, KeyError, AttributeError)):
        return PermanentEventError(f"{type(exc).__name__}: {exc}", log_text=without_data)
    return InfrastructureUnavailable(f"{type(exc).__name__}: {exc}", log_text=without_data)


def classify_delivery_error(kafka_error) -> Exception:
    text = f"{kafka_error.name()}: {kafka_error.str()}"
    if kafka_error_is_permanent(kafka_error):
        return PermanentEventError(f"Kafka refused the message: {text}")
    return InfrastructureUnavailable(f"Kafka delivery failed: {text}")


def classify_redis_error(exc) -> Exception:
    """
    Every Redis error is an outage: with an id of ``*``, no ``XADD`` of a stream entry is refused
    for the entry itself, only for the state of Redis (down, loading, full, read-only, the
    client's rights), which changes without touching the event (ADR 17).
    """
    return InfrastructureUnavailable(describe_redis_error(exc))
