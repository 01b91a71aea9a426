"""
Every Django setting this package reads, in one place.

Each accessor reads ``django.conf.settings`` when it is called, never at import time, so
``override_settings`` works in tests and the package imports before Django is configured.
Settings shared with edx-event-bus-kafka keep their names, so a service can switch
packages without touching its configuration.
"""
from django.conf import settings

from .exceptions import OutboxConfigurationError

MODE_OUTBOX = "outbox"
MODE_ON_COMMIT = "on-commit"
MODES = (MODE_OUTBOX, MODE_ON_COMMIT)


def _get(name, default):
    return getattr(settings, name, default)


def _positive_seconds(name, default):
    """A duration that must be positive: a timeout of 0 or less would mean "wait forever" or "never"."""
    seconds = float(_get(name, default))
    if seconds <= 0:
        raise OutboxConfigurationError(f"{name} must be a positive number of seconds, not {seconds!r}.")
    return seconds


# ---------------------------------------------------------------- Kafka connection

def bootstrap_servers():
    # .. setting_name: EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS
    # .. setting_default: None
    # .. setting_description: Comma-separated Kafka bootstrap servers (``host:port``). Required
    #   by the relay, the ``on-commit`` mode and the consumer. The outbox write path never
    #   talks to Kafka, so a service that only writes events may leave it unset.
    return _get("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", None)


def kafka_api_key():
    # .. setting_name: EVENT_BUS_KAFKA_API_KEY
    # .. setting_default: None
    # .. setting_description: SASL/PLAIN username for the Kafka cluster (over TLS). With
    #   ``EVENT_BUS_KAFKA_API_SECRET`` it switches on ``SASL_SSL``; without both, no
    #   authentication is attempted.
    return _get("EVENT_BUS_KAFKA_API_KEY", None)


def kafka_api_secret():
    # .. setting_name: EVENT_BUS_KAFKA_API_SECRET
    # .. setting_default: None
    # .. setting_description: SASL/PLAIN password matching ``EVENT_BUS_KAFKA_API_KEY``.
    return _get("EVENT_BUS_KAFKA_API_SECRET", None)


def schema_registry_url():
    # .. setting_name: EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL
    # .. setting_default: None
    # .. setting_description: Root URL of a Confluent-compatible schema registry (for
    #   Apicurio, ``http://HOST:PORT/apis/ccompat/v7``). Required wherever Kafka is.
    return _get("EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL", None)


def schema_registry_api_key():
    # .. setting_name: EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_KEY
    # .. setting_default: ''
    # .. setting_description: Basic-auth user for the schema registry. Optional.
    return _get("EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_KEY", "")


def schema_registry_api_secret():
    # .. setting_name: EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_SECRET
    # .. setting_default: ''
    # .. setting_description: Basic-auth password for the schema registry. Optional.
    return _get("EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_SECRET", "")


def schema_registry_timeout():
    # .. setting_name: EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_TIMEOUT_SECONDS
    # .. setting_default: 10.0
    # .. setting_description: Timeout of each schema registry HTTP request made by the relay,
    #   the ``on-commit`` mode and the consumer. A timed-out request is retried by the
    #   registry client, then treated like an unreachable registry (the relay backs off, the
    #   consumer waits). Without a timeout, a registry that accepts the connection but never
    #   answers would block the process for good; confluent-kafka's default is no timeout.
    return _positive_seconds("EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_TIMEOUT_SECONDS", 10.0)


def topic_prefix():
    # .. setting_name: EVENT_BUS_TOPIC_PREFIX
    # .. setting_default: None
    # .. setting_description: When set, every topic is used as ``f"{prefix}-{topic}"`` by the
    #   relay, the ``on-commit`` mode and the consumer, e.g. to let several environments
    #   share one cluster. Rows in the outbox keep the un-prefixed topic.
    return _get("EVENT_BUS_TOPIC_PREFIX", None)


def audit_logging_enabled():
    # .. setting_name: EVENT_BUS_KAFKA_AUDIT_LOGGING_ENABLED
    # .. setting_default: True
    # .. setting_description: Log one INFO line per event delivered (relay: topic, partition,
    #   offset, event id and key) or handled (consumer: topic, partition, offset, event id and
    #   type, and what became of it; no key). Payloads are never logged.
    return bool(_get("EVENT_BUS_KAFKA_AUDIT_LOGGING_ENABLED", True))


# ---------------------------------------------------------------- producer / write path

def producer_config():
    # .. setting_name: EVENT_BUS_PRODUCER_CONFIG
    # .. setting_default: {}
    # .. setting_description: openedx-events' map of event type -> topic -> options
    #   (``event_key_field``, ``enabled``). This package also reads an optional ``"mode"``
    #   option per topic (``"outbox"`` or ``"on-commit"``), defaulting to
    #   ``EVENT_BUS_PRODUCER_MODE``.
    return _get("EVENT_BUS_PRODUCER_CONFIG", {}) or {}


def default_mode():
    # .. setting_name: EVENT_BUS_PRODUCER_MODE
    # .. setting_default: "outbox"
    # .. setting_description: How events are produced when their topic entry in
    #   ``EVENT_BUS_PRODUCER_CONFIG`` names no ``"mode"``. ``"outbox"``: written to the outbox
    #   table in the caller's transaction and published by the relay (nothing lost).
    #   ``"on-commit"``: published straight to Kafka after the transaction commits (lower
    #   latency, but lost if the process dies or Kafka is down at that moment).
    return _get("EVENT_BUS_PRODUCER_MODE", MODE_OUTBOX)


def database_alias():
    # .. setting_name: EVENT_BUS_OUTBOX_DATABASE
    # .. setting_default: "default"
    # .. setting_description: Database alias whose connection (and so whose transaction) the
    #   outbox rows are written on, and which the relay drains. It must be the alias your
    #   application writes its own data to, or the outbox loses its atomicity.
    return _get("EVENT_BUS_OUTBOX_DATABASE", "default")


def propagate_send_errors():
    # .. setting_name: EVENT_BUS_OUTBOX_PROPAGATE_SEND_ERRORS
    # .. setting_default: False
    # .. setting_description: When True, every signal named in ``EVENT_BUS_PRODUCER_CONFIG``
    #   is switched to openedx-events' ``allow_send_event_failure()`` at startup, so an event
    #   that cannot be written raises out of ``send_event()`` and an enclosing ``atomic()``
    #   rolls back instead of committing without its event. It makes *every* receiver's
    #   exception propagate for those signals. See docs/decisions/0004-errors-raised-from-send.rst.
    return bool(_get("EVENT_BUS_OUTBOX_PROPAGATE_SEND_ERRORS", False))


# ---------------------------------------------------------------- relay

def relay_batch_size():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE
    # .. setting_default: 500
    # .. setting_description: Rows the relay claims, publishes and marks per round trip for
    #   one lane. Larger batches drain faster; the relay's memory grows with this, never with
    #   the backlog. Overridden by ``run_outbox_relay --batch-size``.
    return int(_get("EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE", 500))


def relay_batch_max_bytes():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_BATCH_MAX_BYTES
    # .. setting_default: 4194304
    # .. setting_description: Most payload bytes (of the stored JSON) a relay batch reads, on
    #   top of ``EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE`` rows: the batch ends before the row that
    #   would pass it, but always holds at least one row. So 500 large events cannot exhaust
    #   the relay's memory; the relay's memory is a small multiple of this (decoded payloads
    #   and their Avro encoding). Overridden by ``run_outbox_relay --batch-max-bytes``.
    return int(_get("EVENT_BUS_OUTBOX_RELAY_BATCH_MAX_BYTES", 4 * 1024 * 1024))


def relay_poll_interval():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_POLL_INTERVAL
    # .. setting_default: 1.0
    # .. setting_description: Longest time, in seconds, an idle relay waits before looking for
    #   new rows. Polling starts at 1/20 of this after work was found and backs off to it. On
    #   PostgreSQL a NOTIFY wakes the relay sooner. Overridden by ``--poll-interval``.
    return float(_get("EVENT_BUS_OUTBOX_RELAY_POLL_INTERVAL", 1.0))


def relay_lease_seconds():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_LEASE_SECONDS
    # .. setting_default: 30
    # .. setting_description: How long a relay's lease on a lane lasts without renewal. A
    #   standby relay takes a lane over at most this long after its holder died. Kafka
    #   delivery timeouts are derived from it so that no batch outlives its lease. See
    #   docs/decisions/0002-leases-and-fencing.rst. Overridden by ``--lease-seconds``.
    return float(_get("EVENT_BUS_OUTBOX_RELAY_LEASE_SECONDS", 30))


def relay_max_attempts():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_MAX_ATTEMPTS
    # .. setting_default: 5
    # .. setting_description: Attempts at an event that fails for a reason of its own
    #   (incompatible schema, too large, unknown signal) before it is moved to the ``dead``
    #   state. Outages of the broker or registry never count. See
    #   docs/decisions/0003-retries-and-the-dead-state.rst.
    return int(_get("EVENT_BUS_OUTBOX_RELAY_MAX_ATTEMPTS", 5))


def relay_backoff_seconds():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_BACKOFF_SECONDS
    # .. setting_default: (0.5, 60.0)
    # .. setting_description: ``(first, cap)`` of the relay's exponential backoff with full
    #   jitter, in seconds, used after a failed event and while Kafka or the registry is down.
    first, cap = _get("EVENT_BUS_OUTBOX_RELAY_BACKOFF_SECONDS", (0.5, 60.0))
    return float(first), float(cap)


def relay_lanes():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_LANES
    # .. setting_default: None
    # .. setting_description: Topics (lanes) this relay drains; ``None`` drains every topic
    #   found in the outbox. Overridden by ``--lane``.
    return _get("EVENT_BUS_OUTBOX_RELAY_LANES", None)


def relay_listen():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_LISTEN
    # .. setting_default: True
    # .. setting_description: On PostgreSQL, LISTEN for the outbox table's insert trigger so an
    #   idle relay wakes at once. Turn off behind a transaction-pooling proxy (PgBouncer in
    #   transaction mode), where LISTEN does not work; the relay then polls.
    return bool(_get("EVENT_BUS_OUTBOX_RELAY_LISTEN", True))


def relay_heartbeat_file():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_HEARTBEAT_FILE
    # .. setting_default: None
    # .. setting_description: A file whose modification time the relay refreshes on every loop,
    #   for a liveness probe (``find FILE -mmin -1``). ``None`` writes no file. Overridden by
    #   ``--heartbeat-file``.
    return _get("EVENT_BUS_OUTBOX_RELAY_HEARTBEAT_FILE", None)


def delete_on_ack():
    # .. setting_name: EVENT_BUS_OUTBOX_DELETE_ON_ACK
    # .. setting_default: False
    # .. setting_description: Delete rows as soon as the broker acknowledged them, instead of
    #   marking them ``sent`` and keeping them for ``EVENT_BUS_OUTBOX_RETENTION_DAYS``. Keeps
    #   the table smallest, at the cost of the sent history (and of PII lingering less).
    return bool(_get("EVENT_BUS_OUTBOX_DELETE_ON_ACK", False))



# ---------------------------------------------------------------- status and alerting

def status_max_pending_age():
    # .. setting_name: EVENT_BUS_OUTBOX_STATUS_MAX_PENDING_AGE
    # .. setting_default: 300
    # .. setting_description: ``outbox_status --check`` fails when the oldest pending event of
    #   any lane is older than this many seconds: the relay is down, stuck, or too slow.
    return float(_get("EVENT_BUS_OUTBOX_STATUS_MAX_PENDING_AGE", 300))


def status_max_dead():
    # .. setting_name: EVENT_BUS_OUTBOX_STATUS_MAX_DEAD
    # .. setting_default: 0
    # .. setting_description: ``outbox_status --check`` fails when more rows than this are
    #   dead: each one is an event that was not published and waits for an operator.
    return int(_get("EVENT_BUS_OUTBOX_STATUS_MAX_DEAD", 0))

# ---------------------------------------------------------------- retention

def retention_days():
    # .. setting_name: EVENT_BUS_OUTBOX_RETENTION_DAYS
    # .. setting_default: 7
    # .. setting_description: ``purge_outbox`` deletes ``sent`` rows older than this many days.
    #   Dead rows are never purged automatically: they wait for an operator.
    return float(_get("EVENT_BUS_OUTBOX_RETENTION_DAYS", 7))


def purge_batch_size():
    # .. setting_name: EVENT_BUS_OUTBOX_PURGE_BATCH_SIZE
    # .. setting_default: 1000
    # .. setting_description: Rows ``purge_outbox`` (and ``purge_consumer_inbox``) deletes per
    #   transaction, so no lock is held long and replicas keep up.
    return int(_get("EVENT_BUS_OUTBOX_PURGE_BATCH_SIZE", 1000))


# ---------------------------------------------------------------- consumer

def consumers_enabled():
    # .. setting_name: EVENT_BUS_KAFKA_CONSUMERS_ENABLED
    # .. setting_default: True
    # .. setting_description: Emergency kill switch, as in edx-event-bus-kafka: when False,
    #   ``consume_events`` logs an error and exits at once without joining the consumer group.
    #   Takes effect when the consumer process is restarted.
    return bool(_get("EVENT_BUS_KAFKA_CONSUMERS_ENABLED", True))


def consumer_poll_timeout():
    # .. setting_name: EVENT_BUS_KAFKA_CONSUMER_POLL_TIMEOUT
    # .. setting_default: 1.0
    # .. setting_description: Seconds one ``poll()`` waits for a message. It also bounds how long
    #   an idle consumer takes to notice SIGTERM and to commit what it has processed.
    return float(_get("EVENT_BUS_KAFKA_CONSUMER_POLL_TIMEOUT", 1.0))


def consumer_poll_failure_sleep():
    # .. setting_name: EVENT_BUS_KAFKA_CONSUMER_POLL_FAILURE_SLEEP
    # .. setting_default: 1.0
    # .. setting_description: Seconds the consumer waits after a failed poll, or before
    #   retrying a message whose writer schema could not be fetched because the schema registry
    #   was unreachable or the inbox could not be read, so that an outage does not become a
    #   busy loop.
    return float(_get("EVENT_BUS_KAFKA_CONSUMER_POLL_FAILURE_SLEEP", 1.0))


def consumer_consecutive_errors_limit():
    # .. setting_name: EVENT_BUS_KAFKA_CONSUMER_CONSECUTIVE_ERRORS_LIMIT
    # .. setting_default: None
    # .. setting_description: When set, the consumer exits with ``ConsumerStuckError`` after this
    #   many errors in a row (failed polls, registry or inbox database outages, messages whose
    #   receivers still failed after their retries), so that a process manager restarts it with
    #   fresh state.
    #   A successfully processed message resets the count. Unusable messages (bad framing,
    #   unknown type...) are dead-lettered or skipped and do not count: they say nothing about
    #   the consumer's health. Offsets of processed and dead-lettered messages are committed
    #   before exiting.
    limit = _get("EVENT_BUS_KAFKA_CONSUMER_CONSECUTIVE_ERRORS_LIMIT", None)
    return int(limit) if limit else None


def consumer_kafka_config():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG
    # .. setting_default: {}
    # .. setting_description: Extra librdkafka consumer properties, e.g.
    #   ``{"auto.offset.reset": "earliest", "session.timeout.ms": 30000}``. ``group.id``,
    #   ``enable.auto.commit`` and ``enable.auto.offset.store`` are refused: the consumer commits
    #   offsets itself, after processing, to be at-least-once.
    return dict(_get("EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG", {}) or {})


def consumer_commit_interval():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_COMMIT_INTERVAL_SECONDS
    # .. setting_default: 1.0
    # .. setting_description: Offsets of processed (or dead-lettered) messages are committed
    #   synchronously at most this often, whenever the consumer is idle, before partitions are
    #   revoked and on shutdown. A crash replays at most this much work; ``0`` commits after
    #   every message (slower, fewest replays). See
    #   docs/decisions/0006-consumer-at-least-once.rst.
    return float(_get("EVENT_BUS_OUTBOX_CONSUMER_COMMIT_INTERVAL_SECONDS", 1.0))


def consumer_max_retries():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_MAX_RETRIES
    # .. setting_default: 3
    # .. setting_description: How many more times a message's failed receivers are called (only
    #   the receivers that failed) before the message is dead-lettered, or skipped when no
    #   dead-letter topic is set. ``0`` disables retries. Keep the total backoff well under
    #   librdkafka's ``max.poll.interval.ms`` (5 minutes by default).
    return max(0, int(_get("EVENT_BUS_OUTBOX_CONSUMER_MAX_RETRIES", 3)))


def consumer_retry_backoff():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_RETRY_BACKOFF_SECONDS
    # .. setting_default: 1.0
    # .. setting_description: Wait before the first retry of failed receivers; it doubles on
    #   each further retry, up to ``EVENT_BUS_OUTBOX_CONSUMER_RETRY_BACKOFF_MAX_SECONDS``.
    #   SIGTERM interrupts the wait (the message is then not committed, and is re-delivered).
    return max(0.0, float(_get("EVENT_BUS_OUTBOX_CONSUMER_RETRY_BACKOFF_SECONDS", 1.0)))


def consumer_retry_backoff_max():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_RETRY_BACKOFF_MAX_SECONDS
    # .. setting_default: 30.0
    # .. setting_description: Upper bound of one wait between receiver retries.
    return max(0.0, float(_get("EVENT_BUS_OUTBOX_CONSUMER_RETRY_BACKOFF_MAX_SECONDS", 30.0)))


def consumer_dead_letter_topic():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TOPIC
    # .. setting_default: None
    # .. setting_description: Kafka topic (used exactly as written: ``EVENT_BUS_TOPIC_PREFIX`` is
    #   not added) that receives, with the original key, value and headers plus ``dlt_*`` error
    #   headers, every message that is unusable or whose receivers failed after all retries.
    #   The consumer waits for the broker's acknowledgement before committing past it. When
    #   unset, such messages are logged (never with their payload) and skipped, as
    #   edx-event-bus-kafka does.
    return _get("EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TOPIC", None) or None


def consumer_dead_letter_timeout():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TIMEOUT_SECONDS
    # .. setting_default: 30.0
    # .. setting_description: How long the consumer waits for the broker to acknowledge a
    #   dead-lettered message (librdkafka's ``message.timeout.ms`` for the dead-letter
    #   producer). Without the acknowledgement the original message is not committed past: the
    #   consumer stops, and the message is read again when it restarts.
    return _positive_seconds("EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TIMEOUT_SECONDS", 30.0)


def consumer_deduplicate():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_DEDUPLICATE
    # .. setting_default: False
    # .. setting_description: When True, each receiver that handled an event successfully is
    #   recorded in the consumer inbox table per (consumer group, ``ce_id``), and is not called
    #   again for that event when the message is re-delivered (after a crash, a rebalance, or a
    #   duplicate publish). Costs one SELECT and one INSERT per message on
    #   ``EVENT_BUS_OUTBOX_DATABASE``. Purge old rows with ``purge_consumer_inbox``.
    return bool(_get("EVENT_BUS_OUTBOX_CONSUMER_DEDUPLICATE", False))


def consumer_inbox_retention_days():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_INBOX_RETENTION_DAYS
    # .. setting_default: 7
    # .. setting_description: ``purge_consumer_inbox`` deletes inbox rows older than this many
    #   days. An event re-delivered after its rows were purged is handled again, so keep this
    #   longer than any replay window you use (``offset_time``) and the topic's retention.
    return float(_get("EVENT_BUS_OUTBOX_CONSUMER_INBOX_RETENTION_DAYS", 7))
