"""Errors of the consumer. Those an operator sees say what to do about them."""

from confluent_kafka import KafkaException

from ..exceptions import OutboxConfigurationError, OutboxError


class UnusableMessage(OutboxError):
    """
    A message that can never be emitted as it is: it is dead-lettered or skipped, never retried.

    ``reason`` is a short code (it becomes the ``dlt_reason`` header); the message text names
    the problem but never contains the payload.
    """

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class ReceiversFailed(OutboxError):
    """Receivers still raised after every retry; ``failures`` is ``[(receiver name, exception)]``."""

    def __init__(self, failures, retries: int):
        self.failures = failures
        details = "; ".join(f"{name}: {error!r}" for name, error in failures)
        super().__init__(f"{len(failures)} receiver(s) failed after {retries} retries: {details}")


class RegistryUnavailable(OutboxError):
    """The writer schema could not be fetched for a reason other than "no such schema"."""

    def __init__(self, schema_id: int, cause: Exception):
        self.schema_id = schema_id
        super().__init__(
            f"Could not fetch writer schema {schema_id} from the schema registry ({cause!r}). "
            "The message is retried, not skipped; check EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL and the registry."
        )


class DeadLetterError(OutboxError):
    """Writing to the dead-letter topic failed, so the message must not be committed."""

    def __init__(self, topic: str, problem: str):
        super().__init__(
            f"Could not write to dead-letter topic {topic!r}: {problem}. The consumer stops without "
            "committing the message, which is re-delivered when it restarts; check that the topic "
            "exists and the broker accepts writes, or unset EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TOPIC."
        )


class ConsumerStuckError(OutboxError):
    """Too many consecutive errors: exit so that the process manager restarts with fresh state."""

    def __init__(self, count: int):
        super().__init__(
            f"{count} consecutive consumer errors (EVENT_BUS_KAFKA_CONSUMER_CONSECUTIVE_ERRORS_LIMIT); "
            "exiting so that a process manager restarts the consumer. The log lines before this one "
            "name the failures; fix their cause (database, registry, broker, receivers)."
        )


class ReplayError(OutboxError):
    """The broker could not say which offsets belong to ``offset_time``."""


class ConsumerConfigurationError(OutboxConfigurationError):
    """A consumer option or setting is invalid; raised before the consumer joins its group."""


class FatalKafkaError(OutboxError, KafkaException):
    """librdkafka reported a fatal error: this client cannot continue; the consumer exits to be restarted."""


class ReceiverIdentityError(ConsumerConfigurationError):
    """With deduplication on, a receiver has no stable identity of its own, or shares one with another."""


class ShutdownRequested(OutboxError):
    """Internal: SIGTERM arrived while a message was waiting for a retry; stop without committing it."""
