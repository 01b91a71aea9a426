"""
Custom attributes, traces and audit log lines, named as edx-event-bus-kafka names them so that
existing dashboards and alerts keep working. Nothing here ever logs a payload or a key (keys
can be usernames or emails).
"""

import logging
import platform

import django
from edx_django_utils.monitoring import function_trace, record_exception, set_custom_attribute

from ..kafka.headers import LastMessageCache, MessageHeaderError, message_headers

logger = logging.getLogger(__name__)

SHOWN_HEADER_LENGTH = 100  # an event id or type is shorter; a damaged header can be any size

__all__ = [
    "function_trace",
    "message_attributes",
    "error_attributes",
    "outcome_attributes",
    "audit_received",
    "audit_done",
    "record_error",
    "describe",
]


def describe(msg) -> str:
    """How log lines name a message: where it is and which event it carries, never what it says."""
    ids, types = _identity(msg)
    return (
        f"topic={msg.topic()} partition={msg.partition()} offset={msg.offset()} "
        f"event_id={ids or None} event_type={types or None}"
    )


def _read_identity(msg) -> tuple:
    """``(ids, types)``: the ``ce_id`` and ``ce_type`` values fit for a log line, comma-joined."""
    headers = _headers(msg)
    return ",".join(_safe_values(headers, "ce_id")), ",".join(_safe_values(headers, "ce_type"))


# Asked for twice per message (the attributes, the audit line).
_identity = LastMessageCache(_read_identity)


def _headers(msg) -> list:
    try:
        return message_headers(msg)
    except MessageHeaderError:
        return []


def _safe_values(headers, name) -> list:
    """A header's values fit for a log line, whatever they are (null, not UTF-8, huge)."""
    return [_printable(value) for key, value in headers if key == name]


def _printable(value) -> str:
    if value is None:
        return "<null>"
    try:
        return value[:SHOWN_HEADER_LENGTH].decode("utf-8")
    except UnicodeDecodeError:
        return "<not UTF-8>"


def message_attributes(run_context, msg):
    """The per-poll attributes edx-event-bus-kafka's consumer sets; ``msg`` is None when the poll returned nothing."""
    try:
        # .. custom_attribute_name: kafka_topic
        # .. custom_attribute_description: The full topic of the message or error.
        set_custom_attribute("kafka_topic", run_context["full_topic"])
        # .. custom_attribute_name: kafka_received_message
        # .. custom_attribute_description: True if this span processed a message, False otherwise.
        set_custom_attribute("kafka_received_message", msg is not None)
        if msg is None:
            return
        # .. custom_attribute_name: kafka_partition
        # .. custom_attribute_description: The partition of the message.
        set_custom_attribute("kafka_partition", msg.partition())
        # .. custom_attribute_name: kafka_offset
        # .. custom_attribute_description: The offset of the message.
        set_custom_attribute("kafka_offset", msg.offset())
        # .. custom_attribute_name: django_version
        # .. custom_attribute_description: The Django version in use.
        set_custom_attribute("django_version", django.__version__)
        # .. custom_attribute_name: python_version
        # .. custom_attribute_description: The Python version in use.
        set_custom_attribute("python_version", platform.python_version())
        ids, types = _identity(msg)
        if ids:
            # .. custom_attribute_name: kafka_message_id
            # .. custom_attribute_description: The message's ``ce_id`` header(s), comma-joined.
            set_custom_attribute("kafka_message_id", ids)
        if types:
            # .. custom_attribute_name: kafka_event_type
            # .. custom_attribute_description: The message's ``ce_type`` header(s), comma-joined.
            set_custom_attribute("kafka_event_type", types)
    except Exception as exc:  # noqa: BLE001  monitoring must never stop consumption
        # Monitoring must never stop consumption.
        set_custom_attribute("kafka_monitoring_error", repr(exc))


def error_attributes(kafka_error):
    # .. custom_attribute_name: kafka_error_fatal
    # .. custom_attribute_description: Whether the Kafka error is fatal for the consumer.
    set_custom_attribute("kafka_error_fatal", kafka_error.fatal())
    # .. custom_attribute_name: kafka_error_retriable
    # .. custom_attribute_description: Whether the Kafka error is retriable.
    set_custom_attribute("kafka_error_retriable", kafka_error.retriable())


def outcome_attributes(outcome, retries):
    # .. custom_attribute_name: kafka_message_outcome
    # .. custom_attribute_description: What became of the message: ``processed``, ``duplicate``
    #   (deduplicated by the inbox), ``dead_lettered`` or ``skipped``. (edx-event-bus-outbox only)
    set_custom_attribute("kafka_message_outcome", outcome)
    # .. custom_attribute_name: kafka_receiver_retries
    # .. custom_attribute_description: How many times failed receivers were retried for the
    #   message. (edx-event-bus-outbox only)
    set_custom_attribute("kafka_receiver_retries", retries)


def audit_received(msg):
    """DEBUG only: a line before processing, to find the message a consumer is stuck on."""
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("Message received from Kafka: %s", describe(msg))


def audit_done(msg, outcome):
    """
    The audit line (``EVENT_BUS_KAFKA_AUDIT_LOGGING_ENABLED``): one per message, once its fate
    is known. edx-event-bus-kafka writes two INFO lines per message; one carrying all the
    identifiers halves the logging cost, which is a large share of a fast consumer's time.
    """
    timestamp_type, timestamp_ms = msg.timestamp()
    logger.info(
        "Message from Kafka %s: %s event_timestamp_ms=%s",
        outcome,
        describe(msg),
        timestamp_ms if timestamp_type else "none",
    )  # 0: TIMESTAMP_NOT_AVAILABLE


def record_error(run_context, error, msg=None):
    """Log an error with where it happened (no payload) and report it to the APM, as edx-event-bus-kafka does."""
    where = describe(msg) if msg is not None else "no event available"
    try:
        raise error
    except Exception:
        # record_exception reads the exception being handled, hence the raise above.
        record_exception()
        logger.exception(
            "Error consuming event from Kafka: %r in context %s -- %s",
            error,
            ", ".join(f"{k}={v!r}" for k, v in run_context.items()),
            where,
        )
