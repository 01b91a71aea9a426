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


class ReplaySelectionError(OutboxError):
    """The options of a replay are invalid or name what the outbox does not hold; nothing was published."""


class ReplayStopped(OutboxError):
    """A replay could not publish an event and stopped; every selected event up to ``resume_after_id`` went out."""

    def __init__(self, *, done, total, resume_after_id, cause):
        self.done = done
        self.total = total
        self.resume_after_id = resume_after_id
        self.cause = cause
        super().__init__(
            f"Replay stopped after {done} of {total} events: {cause}. Every selected event up to id "
            f"{resume_after_id} was published. Fix the cause (is the broker reachable?), then resume with the "
            f"same options and --after-id {resume_after_id}."
        )


class OwnedPropertyError(OutboxConfigurationError):
    """A client settings dict names a property the package sets itself (see ADR 13, owned client properties)."""

    def __init__(self, setting, reasons):
        self.setting = setting
        self.properties = sorted(reasons)
        because = "; ".join(f"{name!r}: {reasons[name]}" for name in self.properties)
        super().__init__(
            f"{setting} may not set {', '.join(map(repr, self.properties))}, which the package sets itself "
            f"({because}). Remove {'it' if len(reasons) == 1 else 'them'} from {setting}."
        )


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
