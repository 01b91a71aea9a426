"""Typed errors raised by this package. Each message says what to do about it."""


class OutboxError(Exception):
    """Base class for every error this package raises on purpose."""


class OutboxConfigurationError(OutboxError):
    """A setting is missing or invalid; raised at startup where possible."""


class EventValidationError(OutboxError, ValueError):
    """
    An event does not match its signal's Avro schema, so it was not written.

    Carries the signal's event type, the topic and the offending field so that the
    message names all three.
    """

    def __init__(self, *, event_type, topic, field, problem):
        self.event_type = event_type
        self.topic = topic
        self.field = field
        self.problem = problem
        super().__init__(
            f"Event {event_type!r} for topic {topic!r} was not written: field {field!r} {problem}. "
            "Fix the data passed to send_event(); nothing was stored."
        )


class CeleryNotInstalledError(OutboxError, ImportError):
    """``edx_event_bus_outbox.tasks`` was imported where Celery, the package's ``[celery]`` extra, is missing."""

    def __init__(self):
        super().__init__(
            "edx_event_bus_outbox.tasks needs Celery, which is not installed. Install the extra "
            "(pip install 'edx-event-bus-outbox[celery]'), or run the relay as a process "
            "(python manage.py run_outbox_relay), which needs no Celery.",
            name="celery",
        )


class TopicNotReadyError(OutboxError):
    """A Kafka topic could not be created, or its partitions got no leader in time."""

    def __init__(self, topics, problem):
        self.topics = topics
        self.problem = problem
        super().__init__(f"Kafka topic {topics!r} {problem}.")
