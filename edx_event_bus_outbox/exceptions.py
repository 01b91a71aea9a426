"""Typed errors raised by this package. Each message says what to do about it."""


class OutboxError(Exception):
    """Base class for every error this package raises on purpose."""


class OutboxConfigurationError(OutboxError):
    """A setting is missing or invalid; raised at startup where possible."""


class EventValidationError(OutboxError, ValueError):
    """
    An event cannot be stored or published as it is, so it was not written.

    Raised before any database statement (ADR 4): the event does not match its signal's Avro
    schema, holds content a database cannot store (NUL, a lone surrogate, NaN), or is larger
    than ``EVENT_BUS_OUTBOX_MAX_EVENT_BYTES``. The message names the signal's event type, the
    topic and the offending field, never the field's value: openedx-events logs it at ERROR,
    and values may be PII.
    """

    def __init__(self, *, event_type, topic, field, problem):
        self.event_type = event_type
        self.topic = topic
        self.field = field
        self.problem = problem
        super().__init__(
            f"Event {event_type!r} for topic {topic!r} was not written: field {field!r} {problem}. "
            "Fix the data passed to send_event(); nothing was stored, the caller's transaction is unaffected."
        )


class OutboxWriteError(OutboxError):
    """
    The database refused the outbox INSERT of a valid event.

    The caller's transaction is left as it was before ``send()`` (ADR 4), so it commits
    without this event unless the error propagates. The message names the event, never the
    database's own text, which can quote the row (payload, PII).
    """

    reason = "the database refused the INSERT"

    def __init__(self, *, event_id, event_type, topic, cause):
        self.event_id = event_id
        self.event_type = event_type
        self.topic = topic
        self.cause = cause
        super().__init__(
            f"Event {event_type!r} id {event_id} for topic {topic!r} was not written: {self.reason} ({cause}). "
            f"{self.advice}"
        )

    advice = (
        "The caller's transaction is unaffected and commits without this event; "
        "check the database's log for this error."
    )


class DuplicateEventError(OutboxWriteError):
    """An event with this ``(event_id, topic)`` is already in the outbox; the earlier one is kept."""

    reason = "an event with this id is already in the outbox for this topic"
    advice = (
        "The earlier event is kept and this one was dropped; send_event() makes a fresh id for "
        "each event, so look for code that re-sends fixed EventsMetadata."
    )


class TransactionLostError(OutboxWriteError):
    """The database error on the INSERT rolled back the caller's whole transaction (e.g. a deadlock)."""

    reason = "the database rolled back the caller's whole transaction"
    advice = (
        "The caller's own changes are lost as well: the rest of its atomic block is refused with "
        "TransactionManagementError and nothing of it is committed. Retry the caller's operation."
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


class MetricsServerError(OutboxError):
    """The ``/metrics`` and ``/healthz`` endpoint could not listen where it was told to."""

    def __init__(self, address, port, problem):
        self.address = address
        self.port = port
        super().__init__(
            f"Could not serve /metrics and /healthz on {address}:{port} ({problem}). Another process (an "
            "earlier relay or consumer, another exporter) may hold the port: give each process a port of its "
            "own, or set EVENT_BUS_OUTBOX_METRICS_ADDRESS to an address of this host."
        )
