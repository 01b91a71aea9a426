"""
Every Django setting this package reads, in one place.

Each accessor reads ``django.conf.settings`` when it is called, never at import time, so
``override_settings`` works in tests and the package imports before Django is configured.
The few that ``send()`` calls for every event read it once, until Django's
``setting_changed`` signal (which ``override_settings`` sends) says a setting changed.
Settings shared with edx-event-bus-kafka keep their names, so a service can switch
packages without touching its configuration.

Each accessor also checks its value's type and range, and raises ``OutboxConfigurationError``
naming the setting and what it needs. ``check_settings()`` runs them all (and the checks
that relate two settings); ``manage.py check``, the relay and the consumer call it at startup.
Types are not coerced: ``"false"`` is not False and ``"500"`` is not 500 (see
docs/decisions/0010-settings-checked-at-startup.rst).
"""

import math
import os
import re
from functools import cache
from pathlib import Path

from django.conf import settings
from django.core.signals import setting_changed

from .exceptions import OutboxConfigurationError

MODE_OUTBOX = "outbox"
MODE_ON_COMMIT = "on-commit"
MODES = (MODE_OUTBOX, MODE_ON_COMMIT)

# Kafka's own rule for topic names: a comma or a space in a lane is a typo, not a topic.
TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
# A lane: a topic, or one of the lanes a topic is split into, "{topic}#{index}/{count}" (outbox/lanes.py).
LANE_NAME = re.compile(r"(?P<topic>[A-Za-z0-9._-]{1,249})(?:#(?P<index>0|[1-9][0-9]*)/(?P<count>[1-9][0-9]*))?")
MAX_TOPIC_LANES = 256

# The relay's Kafka delivery timeout is a third of the lease, and at least 1 s (relay/sink.py), so
# that every batch settles while its lease still holds (ADR 2). Below 3 s that floor would make
# the timeout more than a third of the lease, and below 1 s longer than the lease itself.
RELAY_MIN_LEASE_SECONDS = 3.0


_READ_ONCE = []


def _read_once(accessor):
    """
    For the accessors ``send()`` calls on every event: six settings read, checked and looked up
    again for each event cost about 14 µs of it (issue 15). Settings do not change while a
    process runs, except in tests, which send ``setting_changed``.
    """
    cached = cache(accessor)
    _READ_ONCE.append(cached)
    return cached


def _forget_read_once(**_):
    for cached in _READ_ONCE:
        cached.cache_clear()


setting_changed.connect(_forget_read_once, dispatch_uid="edx_event_bus_outbox.conf")


def _get(name, default):
    return getattr(settings, name, default)


def _checked(name, default, check, **options):
    return check(name, _get(name, default), **options)


def _refuse(name, needs, value, secret=False):
    shown = f"a {type(value).__name__}" if secret else repr(value)
    return OutboxConfigurationError(f"{name} must be {needs}, not {shown}.")


def require_bool(name, value) -> bool:
    if not isinstance(value, bool):
        raise _refuse(name, "True or False", value)
    return value


def require_number(name, value, *, integer=False, minimum=0, inclusive=False):
    """An int (or, unless ``integer``, a float) above ``minimum`` (or equal to it, if ``inclusive``)."""
    kinds = int if integer else (int, float)
    usable = isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)
    if not usable or not (value >= minimum if inclusive else value > minimum):
        kind = "an integer" if integer else "a number"
        bound = (
            (f"of at least {minimum:g}" if minimum else "of 0 or more")
            if inclusive
            else (f"above {minimum:g}" if minimum else "above 0")
        )
        raise _refuse(name, f"{kind} {bound}", value)
    return value if integer else float(value)


def require_positive_int(name, value) -> int:
    return require_number(name, value, integer=True)


def require_positive_seconds(name, value) -> float:
    """A duration that must be positive: a timeout of 0 or less would mean "wait forever" or "never"."""
    return require_number(name, value)


def require_string(name, value, *, optional=True, secret=False):
    if (value is None and optional) or isinstance(value, str):
        return value
    raise _refuse(name, "a string" + (" or None" if optional else ""), value, secret)


def require_topic_name(name, value, *, optional=True):
    if (value is None or value == "") and optional:
        return None
    if not isinstance(value, str) or not TOPIC_NAME.fullmatch(value):
        raise _refuse(name, "a Kafka topic name (letters, digits, '.', '_' and '-'; at most 249)", value)
    return value


def require_lane_names(name, value):
    """A list of lane names (topics, or ``topic#index/count``), or None; a bare string is refused."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not value:
        raise _refuse(name, "a non-empty list of topic or lane names (or None for every lane)", value)
    for item in value:
        lane = LANE_NAME.fullmatch(item) if isinstance(item, str) else None
        split = lane is not None and lane["count"] is not None
        if lane is None or (split and not int(lane["index"]) < int(lane["count"]) > 1):
            raise _refuse(name, "a list of topic names, or lane names such as 'my-topic#0/4'", item)
    return list(value)


def require_dict(name, value, *, needs) -> dict:
    """A dict (None and other empty values read as ``{}``), whose entries the caller checks."""
    if not value:
        return {}
    if not isinstance(value, dict):
        raise _refuse(name, needs, value)
    return value


def require_mode(name, value) -> str:
    if value not in MODES:
        raise _refuse(name, f"one of {', '.join(map(repr, MODES))}", value)
    return value


def require_heartbeat_file(name, value):
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or not str(value) or not Path(value).parent.is_dir():
        raise _refuse(name, "a file path in an existing directory (or None)", value)
    return str(value)


def require_client_properties(name, value) -> dict:
    """
    A dict of client property names (strings) to values, as librdkafka and ``SchemaRegistryClient``
    take them. Errors never show a value: it may be a password.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _refuse(name, "a dict of librdkafka property names to values", value, secret=True)
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise _refuse(name, "a dict of librdkafka property names to values", key, secret=True)
        if item is None or isinstance(item, (dict, list, tuple, set, bytes)):
            raise _refuse(f"{name}[{key!r}]", "a string, a number, a boolean or a callable", item, secret=True)
    return dict(value)


def require_port(name, value):
    """A TCP port to listen on, or None. 0 ("any free port") is refused: a probe must know the port."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise _refuse(name, "a TCP port number from 1 to 65535 (or None for no endpoint)", value)
    return value


def check_relay_timing(lease_seconds, poll_interval, *, lease_name, poll_name):
    """The lease leaves room for a batch to settle, and an idle relay looks again before it has long lapsed."""
    if lease_seconds < RELAY_MIN_LEASE_SECONDS:
        raise OutboxConfigurationError(
            f"{lease_name} must be at least {RELAY_MIN_LEASE_SECONDS:g} seconds, not {lease_seconds!r}: the "
            "Kafka delivery timeout is a third of it (at least 1 s), and must be shorter than the lease."
        )
    if poll_interval > lease_seconds:
        raise OutboxConfigurationError(
            f"{poll_name} ({poll_interval!r}) must not be longer than {lease_name} ({lease_seconds!r}): an idle "
            "relay renews its leases only when it looks for work, so standbys would take its lanes in between."
        )


# ---------------------------------------------------------------- Kafka connection


def bootstrap_servers():
    # .. setting_name: EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS
    # .. setting_default: None
    # .. setting_description: Comma-separated Kafka bootstrap servers (``host:port``). Required
    #   by the relay, the ``on-commit`` mode and the consumer. The outbox write path never
    #   talks to Kafka, so a service that only writes events may leave it unset.
    return _checked("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", None, require_string) or None


def kafka_api_key():
    # .. setting_name: EVENT_BUS_KAFKA_API_KEY
    # .. setting_default: None
    # .. setting_description: SASL/PLAIN username for the Kafka cluster (over TLS). With
    #   ``EVENT_BUS_KAFKA_API_SECRET`` it switches on ``SASL_SSL``; without both, no
    #   authentication is attempted.
    return _checked("EVENT_BUS_KAFKA_API_KEY", None, require_string, secret=True)


def kafka_api_secret():
    # .. setting_name: EVENT_BUS_KAFKA_API_SECRET
    # .. setting_default: None
    # .. setting_description: SASL/PLAIN password matching ``EVENT_BUS_KAFKA_API_KEY``.
    return _checked("EVENT_BUS_KAFKA_API_SECRET", None, require_string, secret=True)


def schema_registry_url():
    # .. setting_name: EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL
    # .. setting_default: None
    # .. setting_description: Root URL of a Confluent-compatible schema registry (for
    #   Apicurio, ``http://HOST:PORT/apis/ccompat/v7``). Required wherever Kafka is.
    url = _get("EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL", None)
    if url and not (isinstance(url, str) and re.match(r"https?://[^/]", url)):
        raise _refuse("EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL", "an http:// or https:// URL (or None)", url)
    return url or None


def schema_registry_api_key():
    # .. setting_name: EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_KEY
    # .. setting_default: ''
    # .. setting_description: Basic-auth user for the schema registry. Optional.
    return _checked("EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_KEY", "", require_string, secret=True) or ""


def schema_registry_api_secret():
    # .. setting_name: EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_SECRET
    # .. setting_default: ''
    # .. setting_description: Basic-auth password for the schema registry. Optional.
    return _checked("EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_SECRET", "", require_string, secret=True) or ""


def schema_registry_timeout():
    # .. setting_name: EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_TIMEOUT_SECONDS
    # .. setting_default: 10.0
    # .. setting_description: Timeout of each schema registry HTTP request made by the relay,
    #   the ``on-commit`` mode and the consumer. A timed-out request is retried by the
    #   registry client, then treated like an unreachable registry (the relay backs off, the
    #   consumer waits). Without a timeout, a registry that accepts the connection but never
    #   answers would block the process for good; confluent-kafka's default is no timeout.
    return _checked("EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_TIMEOUT_SECONDS", 10.0, require_positive_seconds)


def kafka_client_config():
    # .. setting_name: EVENT_BUS_OUTBOX_KAFKA_CONFIG
    # .. setting_default: {}
    # .. setting_description: librdkafka properties merged into every Kafka client the package
    #   builds: the relay's producer, the ``on-commit`` producer, the consumer and its dead-letter
    #   producer. For SASL/SCRAM, mTLS, OAUTHBEARER or AWS MSK IAM, e.g.
    #   ``{"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "...",
    #   "sasl.password": "...", "ssl.ca.location": "/etc/kafka/ca.pem"}``. Applied on top of what
    #   ``EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS`` and ``EVENT_BUS_KAFKA_API_KEY``/``_SECRET`` give; the
    #   consumer applies ``EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG`` on top of it. The properties the
    #   package owns (``enable.idempotence``, ``acks``, ``message.timeout.ms``, ``group.id``,
    #   ``enable.auto.commit``...) are refused at startup. Secret values are never logged. See
    #   docs/security.rst.
    return _checked("EVENT_BUS_OUTBOX_KAFKA_CONFIG", {}, require_client_properties)


def schema_registry_client_config():
    # .. setting_name: EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_CONFIG
    # .. setting_default: {}
    # .. setting_description: ``SchemaRegistryClient`` settings merged into every schema registry
    #   client the package builds, e.g. ``{"ssl.ca.location": "/etc/registry/ca.pem",
    #   "ssl.certificate.location": "...", "ssl.key.location": "...", "basic.auth.user.info":
    #   "user:password"}``. Applied on top of the basic auth that
    #   ``EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_KEY``/``_SECRET`` give. ``url`` and ``timeout`` are
    #   refused: they come from ``EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL`` and
    #   ``EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_TIMEOUT_SECONDS``.
    return _checked("EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_CONFIG", {}, require_client_properties)


def _client_properties_not_owned():
    # The properties the package owns are Kafka knowledge, kept in kafka/config.py (ADR 13); imported
    # here, when called, because that module reads this one.
    from .kafka.config import check_client_properties

    check_client_properties()


def topic_prefix():
    # .. setting_name: EVENT_BUS_TOPIC_PREFIX
    # .. setting_default: None
    # .. setting_description: When set, every topic is used as ``f"{prefix}-{topic}"`` by the
    #   relay, the ``on-commit`` mode and the consumer, e.g. to let several environments
    #   share one cluster. Rows in the outbox keep the un-prefixed topic.
    return _checked("EVENT_BUS_TOPIC_PREFIX", None, require_topic_name)


def audit_logging_enabled():
    # .. setting_name: EVENT_BUS_KAFKA_AUDIT_LOGGING_ENABLED
    # .. setting_default: True
    # .. setting_description: Log one INFO line per event delivered (relay: topic, partition,
    #   offset, event id and key) or handled (consumer: topic, partition, offset, event id and
    #   type, and what became of it; no key). Payloads are never logged.
    return _checked("EVENT_BUS_KAFKA_AUDIT_LOGGING_ENABLED", True, require_bool)


# ---------------------------------------------------------------- sinks: Kafka or Redis Streams

SINK_KAFKA = "kafka"
SINK_REDIS = "redis"
SINKS = (SINK_KAFKA, SINK_REDIS)

# What redis-py's ``from_url`` accepts: TCP, TLS and a Unix socket.
REDIS_URL = re.compile(r"(redis|rediss|unix)://.+")


def default_sink():
    # .. setting_name: EVENT_BUS_OUTBOX_SINK
    # .. setting_default: "kafka"
    # .. setting_description: Where the relay publishes every topic not named in
    #   ``EVENT_BUS_OUTBOX_TOPIC_SINKS``: ``"kafka"`` (Kafka and its schema registry) or
    #   ``"redis"`` (Redis Streams, byte-compatible with edx-event-bus-redis, Tutor's default
    #   event bus). See docs/redis.rst.
    sink = _get("EVENT_BUS_OUTBOX_SINK", SINK_KAFKA)
    if sink not in SINKS:
        raise _refuse("EVENT_BUS_OUTBOX_SINK", f"one of {', '.join(map(repr, SINKS))}", sink)
    return sink


def topic_sinks():
    # .. setting_name: EVENT_BUS_OUTBOX_TOPIC_SINKS
    # .. setting_default: {}
    # .. setting_description: Per-topic exceptions to ``EVENT_BUS_OUTBOX_SINK``: a dict of topic
    #   (un-prefixed, as in ``EVENT_BUS_PRODUCER_CONFIG``) to ``"kafka"`` or ``"redis"``, e.g.
    #   ``{"user-login": "redis"}``, so that one deployment sends some topics to Kafka and others
    #   to Redis. Changing a topic's sink while it has pending rows sends them to the new one.
    name = "EVENT_BUS_OUTBOX_TOPIC_SINKS"
    value = _get(name, {}) or {}
    if not isinstance(value, dict):
        raise _refuse(name, 'a dict of topic -> "kafka" or "redis"', value)
    for topic, sink in value.items():
        require_topic_name(f"{name} (a key)", topic, optional=False)
        if sink not in SINKS:
            raise _refuse(f"{name}[{topic!r}]", f"one of {', '.join(map(repr, SINKS))}", sink)
    return value


def sink_for(topic: str) -> str:
    """The sink (``"kafka"`` or ``"redis"``) the relay publishes this topic's rows to."""
    return topic_sinks().get(topic) or default_sink()


def redis_connection_url():
    # .. setting_name: EVENT_BUS_REDIS_CONNECTION_URL
    # .. setting_default: None
    # .. setting_description: edx-event-bus-redis's setting, read as it reads it: the Redis the
    #   relay publishes to for topics whose sink is ``"redis"``, e.g.
    #   ``redis://:PASSWORD@redis:6379/0`` (``rediss://`` for TLS, ``unix://`` for a socket).
    #   Required when any topic's sink is Redis. Never logged or shown in an error.
    url = _get("EVENT_BUS_REDIS_CONNECTION_URL", None)
    if url is not None and not (isinstance(url, str) and REDIS_URL.fullmatch(url)):
        raise _refuse("EVENT_BUS_REDIS_CONNECTION_URL", "a redis://, rediss:// or unix:// URL (or None)", url, True)
    return url


def redis_stream_max_len():
    # .. setting_name: EVENT_BUS_REDIS_STREAM_MAX_LEN
    # .. setting_default: 10000
    # .. setting_description: edx-event-bus-redis's setting, with its default: each ``XADD`` trims
    #   its stream to about this many entries (``MAXLEN ~``, which Redis applies in whole
    #   nodes, so a stream may hold a little more). Older entries are gone from Redis, not from
    #   the outbox, which keeps sent rows for ``EVENT_BUS_OUTBOX_RETENTION_DAYS``. See
    #   docs/decisions/0017-redis-streams-sink.rst.
    return _checked("EVENT_BUS_REDIS_STREAM_MAX_LEN", 10_000, require_positive_int)


def uses_redis() -> bool:
    """Whether any topic's sink is Redis: the default, or one topic's exception."""
    return default_sink() == SINK_REDIS or SINK_REDIS in topic_sinks().values()


# ---------------------------------------------------------------- producer / write path


@_read_once
def producer_config():
    # .. setting_name: EVENT_BUS_PRODUCER_CONFIG
    # .. setting_default: {}
    # .. setting_description: openedx-events' map of event type -> topic -> options
    #   (``event_key_field``, ``enabled``). For compatibility this package also reads an optional
    #   ``"mode"`` option per topic (``"outbox"`` or ``"on-commit"``); prefer
    #   ``EVENT_BUS_OUTBOX_TOPIC_MODES``, which wins over it: edx-platform builds this setting
    #   with ``merge_producer_configs``, which drops ``"mode"`` from the overrides it is given.
    # Read on every send(): only its type here; its entries are checked once, by check_producer_config().
    needs = "a dict of event type -> topic -> options (a dict)"
    return _checked("EVENT_BUS_PRODUCER_CONFIG", {}, require_dict, needs=needs)


def check_producer_config():
    """Each entry of ``EVENT_BUS_PRODUCER_CONFIG``: a topic name and options of the right types."""
    for event_type, topics in producer_config().items():
        if not isinstance(topics, dict) or not all(isinstance(options, dict) for options in topics.values()):
            raise _refuse(f"EVENT_BUS_PRODUCER_CONFIG[{event_type!r}]", "a dict of topic -> options (a dict)", topics)
        for topic, options in topics.items():
            where = f"EVENT_BUS_PRODUCER_CONFIG[{event_type!r}][{topic!r}]"
            require_topic_name(where, topic, optional=False)
            require_string(f"{where}['event_key_field']", options.get("event_key_field"))
            require_bool(f"{where}['enabled']", options.get("enabled", True))
            if "mode" in options:
                require_mode(f"{where}['mode']", options["mode"])


@_read_once
def default_mode():
    # .. setting_name: EVENT_BUS_PRODUCER_MODE
    # .. setting_default: "outbox"
    # .. setting_description: How events are produced when neither
    #   ``EVENT_BUS_OUTBOX_TOPIC_MODES`` nor their topic entry in ``EVENT_BUS_PRODUCER_CONFIG``
    #   names a mode. ``"outbox"``: written to the outbox table in the caller's transaction and
    #   published by the relay (nothing lost). ``"on-commit"``: published straight to Kafka after
    #   the transaction commits (lower latency, but lost if the process dies or Kafka is down at
    #   that moment).
    return _checked("EVENT_BUS_PRODUCER_MODE", MODE_OUTBOX, require_mode)


@_read_once
def topic_modes():
    # .. setting_name: EVENT_BUS_OUTBOX_TOPIC_MODES
    # .. setting_default: {}
    # .. setting_description: The mode of each topic (un-prefixed, as in
    #   ``EVENT_BUS_PRODUCER_CONFIG``), e.g. ``{"user-login": "on-commit"}``: every event type sent
    #   to that topic is produced that way. It wins over a ``"mode"`` option in
    #   ``EVENT_BUS_PRODUCER_CONFIG``, which wins over ``EVENT_BUS_PRODUCER_MODE``. On
    #   edx-platform set modes here, not in ``EVENT_BUS_PRODUCER_CONFIG``: its
    #   ``merge_producer_configs`` drops ``"mode"`` from the YAML's entries. A topic this service
    #   does not produce is allowed (LMS and CMS often share settings). See
    #   docs/decisions/0014-where-the-mode-lives.rst.
    # Read on every send(): only its type here; its entries are checked once, by check_topic_modes().
    return _checked("EVENT_BUS_OUTBOX_TOPIC_MODES", {}, require_dict, needs="a dict of topic -> mode")


@_read_once
def topic_lanes():
    # .. setting_name: EVENT_BUS_OUTBOX_TOPIC_LANES
    # .. setting_default: {}
    # .. setting_description: How many lanes a topic (un-prefixed) is split into, e.g.
    #   ``{"course-catalog-info-changed": 4}``, from 1 to 256; a topic not named has one. A row's
    #   lane is a stable hash of its event key, fixed when the row is written, so up to that many
    #   relays drain the topic at once while every key keeps its commit order. Changing the number
    #   never reorders a key: a lane publishes a row only when no pending row of the topic with a
    #   lower id was written with another number. Set it alike on every service that writes the
    #   topic. See docs/decisions/0022-topics-split-into-lanes.rst.
    # Read on every send(): only its type here; its entries are checked once, by check_topic_lanes().
    return _checked("EVENT_BUS_OUTBOX_TOPIC_LANES", {}, require_dict, needs="a dict of topic -> number of lanes")


def check_topic_lanes():
    """Each entry of ``EVENT_BUS_OUTBOX_TOPIC_LANES``: a topic name and a number of lanes from 1 to 256."""
    for topic, count in topic_lanes().items():
        require_topic_name("EVENT_BUS_OUTBOX_TOPIC_LANES: each key", topic, optional=False)
        require_number(f"EVENT_BUS_OUTBOX_TOPIC_LANES[{topic!r}]", count, integer=True)
        if count > MAX_TOPIC_LANES:
            raise _refuse(f"EVENT_BUS_OUTBOX_TOPIC_LANES[{topic!r}]", f"at most {MAX_TOPIC_LANES}", count)


def check_topic_modes():
    """Each entry of ``EVENT_BUS_OUTBOX_TOPIC_MODES``: a topic name and a known mode."""
    for topic, mode in topic_modes().items():
        require_topic_name("EVENT_BUS_OUTBOX_TOPIC_MODES: each key", topic, optional=False)
        require_mode(f"EVENT_BUS_OUTBOX_TOPIC_MODES[{topic!r}]", mode)


@_read_once
def database_alias():
    # .. setting_name: EVENT_BUS_OUTBOX_DATABASE
    # .. setting_default: "default"
    # .. setting_description: Database alias whose connection (and so whose transaction) the
    #   outbox rows are written on, and which the relay drains. It must be the alias your
    #   application writes its own data to, or the outbox loses its atomicity.
    alias = _get("EVENT_BUS_OUTBOX_DATABASE", "default")
    if not isinstance(alias, str) or alias not in settings.DATABASES:
        aliases = ", ".join(map(repr, settings.DATABASES))
        raise _refuse("EVENT_BUS_OUTBOX_DATABASE", f"an alias in DATABASES ({aliases})", alias)
    return alias


@_read_once
def max_event_bytes():
    # .. setting_name: EVENT_BUS_OUTBOX_MAX_EVENT_BYTES
    # .. setting_default: 1000000
    # .. setting_description: Largest event ``send()`` accepts, in bytes of the Kafka message the
    #   relay will produce for it (framed Avro key and value plus headers). A larger event is
    #   refused at once with ``EventValidationError``, before any database statement, instead of
    #   being stored and then going dead at the relay. The default is Kafka's default
    #   ``message.max.bytes`` as librdkafka (the relay's producer) applies it, 1,000,000; the
    #   broker's default for a topic is 1,048,588. Raise it only together with the producer's
    #   ``message.max.bytes`` and the topic's ``max.message.bytes``.
    return _checked("EVENT_BUS_OUTBOX_MAX_EVENT_BYTES", 1_000_000, require_positive_int)


def propagate_send_errors():
    # .. setting_name: EVENT_BUS_OUTBOX_PROPAGATE_SEND_ERRORS
    # .. setting_default: False
    # .. setting_description: When True, every signal named in ``EVENT_BUS_PRODUCER_CONFIG``
    #   is switched to openedx-events' ``allow_send_event_failure()`` at startup, so an event
    #   that cannot be written raises out of ``send_event()`` and an enclosing ``atomic()``
    #   rolls back instead of committing without its event. It makes *every* receiver's
    #   exception propagate for those signals. See docs/decisions/0004-errors-raised-from-send.rst.
    return _checked("EVENT_BUS_OUTBOX_PROPAGATE_SEND_ERRORS", False, require_bool)


# ---------------------------------------------------------------- relay


def relay_batch_size():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE
    # .. setting_default: 500
    # .. setting_description: Rows the relay claims, publishes and marks per round trip for
    #   one lane. Larger batches drain faster; the relay's memory grows with this, never with
    #   the backlog. Overridden by ``run_outbox_relay --batch-size``.
    return _checked("EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE", 500, require_positive_int)


def relay_batch_max_bytes():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_BATCH_MAX_BYTES
    # .. setting_default: 4194304
    # .. setting_description: Most payload bytes (of the stored JSON) a relay batch reads, on
    #   top of ``EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE`` rows: the batch ends before the row that
    #   would pass it, but always holds at least one row. So 500 large events cannot exhaust
    #   the relay's memory; the relay's memory is a small multiple of this (decoded payloads
    #   and their Avro encoding). Overridden by ``run_outbox_relay --batch-max-bytes``.
    return _checked("EVENT_BUS_OUTBOX_RELAY_BATCH_MAX_BYTES", 4 * 1024 * 1024, require_positive_int)


def relay_poll_interval():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_POLL_INTERVAL
    # .. setting_default: 1.0
    # .. setting_description: Longest time, in seconds, an idle relay waits before looking for
    #   new rows. Polling starts at 1/20 of this after work was found and backs off to it. On
    #   PostgreSQL a NOTIFY wakes the relay sooner. A busy relay serving every lane looks for new
    #   lanes this often. May not be longer than the lease, which an idle relay renews only when
    #   it looks. Overridden by ``--poll-interval``.
    return _checked("EVENT_BUS_OUTBOX_RELAY_POLL_INTERVAL", 1.0, require_positive_seconds)


def relay_lease_seconds():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_LEASE_SECONDS
    # .. setting_default: 30
    # .. setting_description: How long a relay's lease on a lane lasts without renewal. A
    #   standby relay takes a lane over at most this long after its holder died. Kafka
    #   delivery timeouts are derived from it (a third, at least 1 s) so that no batch outlives its
    #   lease, hence at least 3. See docs/decisions/0002-leases-and-fencing.rst. Overridden by
    #   ``--lease-seconds``.
    return _checked("EVENT_BUS_OUTBOX_RELAY_LEASE_SECONDS", 30, require_positive_seconds)


def relay_max_attempts():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_MAX_ATTEMPTS
    # .. setting_default: 5
    # .. setting_description: Attempts at an event that fails for a reason of its own
    #   (incompatible schema, too large, unknown signal) before it is moved to the ``dead``
    #   state, provided it has also been failing for ``EVENT_BUS_OUTBOX_RELAY_DEAD_AFTER_SECONDS``.
    #   Outages of the broker or registry never count. See
    #   docs/decisions/0003-retries-and-the-dead-state.rst.
    return _checked("EVENT_BUS_OUTBOX_RELAY_MAX_ATTEMPTS", 5, require_positive_int)


def relay_dead_after_seconds():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_DEAD_AFTER_SECONDS
    # .. setting_default: 900
    # .. setting_description: How long, in seconds since its first failure, an event that fails
    #   for a reason of its own keeps being retried before it may go ``dead`` (it also needs
    #   ``EVENT_BUS_OUTBOX_RELAY_MAX_ATTEMPTS`` attempts). Meanwhile its lane waits. The default
    #   outlasts a rolling deploy: an older relay that meets an event type only the newer code
    #   knows retries until the newer relay takes the lane over, instead of sending the event to
    #   ``dead``. ``0`` leaves only the attempts. See docs/decisions/0003-retries-and-the-dead-state.rst.
    return _checked("EVENT_BUS_OUTBOX_RELAY_DEAD_AFTER_SECONDS", 900, require_number, inclusive=True)


def relay_backoff_seconds():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_BACKOFF_SECONDS
    # .. setting_default: (0.5, 60.0)
    # .. setting_description: ``(first, cap)`` of the relay's exponential backoff with full
    #   jitter, in seconds, used after a failed event and while Kafka or the registry is down.
    name = "EVENT_BUS_OUTBOX_RELAY_BACKOFF_SECONDS"
    value = _get(name, (0.5, 60.0))
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _refuse(name, "a pair (first, cap) of positive numbers of seconds", value)
    first, cap = (require_positive_seconds(name, part) for part in value)
    if first > cap:
        raise _refuse(name, "a pair (first, cap) with first <= cap", value)
    return first, cap


def relay_lanes():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_LANES
    # .. setting_default: None
    # .. setting_description: A list of the lanes this relay drains, e.g. ``["user-login"]`` (a
    #   bare string is refused): topics, or the lanes of a topic split by
    #   ``EVENT_BUS_OUTBOX_TOPIC_LANES``, named ``"{topic}#{index}/{count}"`` (``"user-login#0/4"``).
    #   ``None`` drains every lane found in the outbox. Overridden by ``--lane``.
    return _checked("EVENT_BUS_OUTBOX_RELAY_LANES", None, require_lane_names)


def relay_listen():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_LISTEN
    # .. setting_default: True
    # .. setting_description: On PostgreSQL, LISTEN for the outbox table's insert trigger so an
    #   idle relay wakes at once; the relay then says when it waits, and only then do commits
    #   notify (ADR 24). Turn off behind a transaction-pooling proxy (PgBouncer in
    #   transaction mode), where LISTEN does not work; the relay then polls.
    return _checked("EVENT_BUS_OUTBOX_RELAY_LISTEN", True, require_bool)


def relay_exactly_once():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_EXACTLY_ONCE
    # .. setting_default: True
    # .. setting_description: Publish each relay batch as one Kafka transaction, with a
    #   transactional producer per lane and a marker record naming the batch's rows, so that
    #   a relay crash or a lease takeover never publishes a committed event twice to
    #   ``read_committed`` consumers (librdkafka's default). Needs a broker with transactions
    #   (Kafka 0.11+, and the Transactional ID and the transactions topic allowed by its ACLs);
    #   turn off for one without, and the relay is at-least-once. Redis Streams topics are
    #   always at-least-once. See docs/decisions/0020-exactly-once-publication.rst.
    return _checked("EVENT_BUS_OUTBOX_RELAY_EXACTLY_ONCE", True, require_bool)


def relay_transactions_topic():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_TRANSACTIONS_TOPIC
    # .. setting_default: "outbox-relay-transactions"
    # .. setting_description: The topic (prefixed like every other) where each exactly-once
    #   batch's transaction ends with a marker record listing its row ids; a relay that takes
    #   a lane over reads the lane's last marker to mark what its predecessor published but
    #   did not mark. The relay creates it, compacted, with one partition, if it is missing.
    return _checked(
        "EVENT_BUS_OUTBOX_RELAY_TRANSACTIONS_TOPIC", "outbox-relay-transactions", require_topic_name, optional=False
    )


def relay_heartbeat_file():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_HEARTBEAT_FILE
    # .. setting_default: None
    # .. setting_description: A file whose modification time the relay refreshes on every loop,
    #   for a liveness probe (``find FILE -mmin -1``). ``None`` writes no file. Overridden by
    #   ``--heartbeat-file``.
    return _checked("EVENT_BUS_OUTBOX_RELAY_HEARTBEAT_FILE", None, require_heartbeat_file)


def relay_metrics_port():
    # .. setting_name: EVENT_BUS_OUTBOX_RELAY_METRICS_PORT
    # .. setting_default: None
    # .. setting_description: TCP port on which ``run_outbox_relay`` serves ``/metrics`` (Prometheus
    #   text format) and ``/healthz`` (200 while the relay publishes or has nothing to publish,
    #   else 503; the heartbeat file's meaning). ``None`` serves nothing. A port another process
    #   holds stops the relay at startup. Overridden by ``--metrics-port``. See docs/monitoring.rst.
    return _checked("EVENT_BUS_OUTBOX_RELAY_METRICS_PORT", None, require_port)


def metrics_address():
    # .. setting_name: EVENT_BUS_OUTBOX_METRICS_ADDRESS
    # .. setting_default: "0.0.0.0"
    # .. setting_description: Address the relay's and the consumer's ``/metrics`` and ``/healthz``
    #   endpoint listens on. The default, every IPv4 address of the host, is what Kubernetes
    #   needs: its probes and Prometheus connect to the pod's IP, never to its loopback, so an
    #   endpoint on ``127.0.0.1`` would fail every probe. Set ``"127.0.0.1"`` where only local
    #   processes may scrape, or ``"::"`` for IPv6. The endpoints carry no event data.
    return _checked("EVENT_BUS_OUTBOX_METRICS_ADDRESS", "0.0.0.0", require_string, optional=False)


def delete_on_ack():
    # .. setting_name: EVENT_BUS_OUTBOX_DELETE_ON_ACK
    # .. setting_default: False
    # .. setting_description: Delete rows as soon as the broker acknowledged them, instead of
    #   marking them ``sent`` and keeping them for ``EVENT_BUS_OUTBOX_RETENTION_DAYS``. Keeps
    #   the table smallest, at the cost of the sent history (and of PII lingering less).
    return _checked("EVENT_BUS_OUTBOX_DELETE_ON_ACK", False, require_bool)


# ---------------------------------------------------------------- status and alerting


def status_max_pending_age():
    # .. setting_name: EVENT_BUS_OUTBOX_STATUS_MAX_PENDING_AGE
    # .. setting_default: 300
    # .. setting_description: ``outbox_status --check`` fails when the oldest pending event of
    #   any lane is older than this many seconds: the relay is down, stuck, or too slow.
    return _checked("EVENT_BUS_OUTBOX_STATUS_MAX_PENDING_AGE", 300, require_positive_seconds)


def status_max_dead():
    # .. setting_name: EVENT_BUS_OUTBOX_STATUS_MAX_DEAD
    # .. setting_default: 0
    # .. setting_description: ``outbox_status --check`` fails when more rows than this are
    #   dead: each one is an event that was not published and waits for an operator.
    return _checked("EVENT_BUS_OUTBOX_STATUS_MAX_DEAD", 0, require_number, integer=True, inclusive=True)


# ---------------------------------------------------------------- retention


def retention_days():
    # .. setting_name: EVENT_BUS_OUTBOX_RETENTION_DAYS
    # .. setting_default: 7
    # .. setting_description: ``purge_outbox`` deletes ``sent`` rows older than this many days.
    #   Dead rows are never purged automatically: they wait for an operator.
    return _checked("EVENT_BUS_OUTBOX_RETENTION_DAYS", 7, require_number, inclusive=True)


def purge_batch_size():
    # .. setting_name: EVENT_BUS_OUTBOX_PURGE_BATCH_SIZE
    # .. setting_default: 1000
    # .. setting_description: Rows ``purge_outbox`` (and ``purge_consumer_inbox``) deletes per
    #   transaction, so no lock is held long and replicas keep up.
    return _checked("EVENT_BUS_OUTBOX_PURGE_BATCH_SIZE", 1000, require_positive_int)


# ---------------------------------------------------------------- consumer


def consumers_enabled():
    # .. setting_name: EVENT_BUS_KAFKA_CONSUMERS_ENABLED
    # .. setting_default: True
    # .. setting_description: Emergency kill switch, as in edx-event-bus-kafka: when False,
    #   ``consume_events`` logs an error and exits at once without joining the consumer group.
    #   Takes effect when the consumer process is restarted.
    return _checked("EVENT_BUS_KAFKA_CONSUMERS_ENABLED", True, require_bool)


def consumer_poll_timeout():
    # .. setting_name: EVENT_BUS_KAFKA_CONSUMER_POLL_TIMEOUT
    # .. setting_default: 1.0
    # .. setting_description: Seconds one ``poll()`` waits for a message. It also bounds how long
    #   an idle consumer takes to notice SIGTERM and to commit what it has processed.
    return _checked("EVENT_BUS_KAFKA_CONSUMER_POLL_TIMEOUT", 1.0, require_positive_seconds)


def consumer_poll_failure_sleep():
    # .. setting_name: EVENT_BUS_KAFKA_CONSUMER_POLL_FAILURE_SLEEP
    # .. setting_default: 1.0
    # .. setting_description: Seconds the consumer waits after a failed poll, or before
    #   retrying a message whose writer schema could not be fetched because the schema registry
    #   was unreachable or the inbox could not be read, so that an outage does not become a
    #   busy loop.
    return _checked("EVENT_BUS_KAFKA_CONSUMER_POLL_FAILURE_SLEEP", 1.0, require_positive_seconds)


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
    name = "EVENT_BUS_KAFKA_CONSUMER_CONSECUTIVE_ERRORS_LIMIT"
    limit = _get(name, None)
    if limit is None:
        return None
    return require_number(name, limit, integer=True, inclusive=True) or None  # 0 is off, as in edx-event-bus-kafka


def consumer_kafka_config():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG
    # .. setting_default: {}
    # .. setting_description: Extra librdkafka consumer properties, e.g.
    #   ``{"auto.offset.reset": "earliest", "session.timeout.ms": 30000}``, applied on top of
    #   ``EVENT_BUS_OUTBOX_KAFKA_CONFIG``. The properties the package owns are refused at startup
    #   (``group.id``, ``enable.auto.commit`` and ``enable.auto.offset.store`` among them: the
    #   consumer commits offsets itself, after processing, to be at-least-once); see
    #   docs/security.rst.
    return _checked("EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG", {}, require_client_properties)


def consumer_commit_interval():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_COMMIT_INTERVAL_SECONDS
    # .. setting_default: 1.0
    # .. setting_description: Offsets of processed (or dead-lettered) messages are committed
    #   synchronously at most this often, whenever the consumer is idle, before partitions are
    #   revoked and on shutdown. A crash replays at most this much work; ``0`` commits after
    #   every message (slower, fewest replays). See
    #   docs/decisions/0006-consumer-at-least-once.rst.
    return _checked("EVENT_BUS_OUTBOX_CONSUMER_COMMIT_INTERVAL_SECONDS", 1.0, require_number, inclusive=True)


def consumer_max_retries():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_MAX_RETRIES
    # .. setting_default: 3
    # .. setting_description: How many more times a message's failed receivers are called (only
    #   the receivers that failed) before the message is dead-lettered, or skipped when no
    #   dead-letter topic is set. ``0`` disables retries. Keep the total backoff well under
    #   librdkafka's ``max.poll.interval.ms`` (5 minutes by default).
    return _checked("EVENT_BUS_OUTBOX_CONSUMER_MAX_RETRIES", 3, require_number, integer=True, inclusive=True)


def consumer_retry_backoff():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_RETRY_BACKOFF_SECONDS
    # .. setting_default: 1.0
    # .. setting_description: Wait before the first retry of failed receivers; it doubles on
    #   each further retry, up to ``EVENT_BUS_OUTBOX_CONSUMER_RETRY_BACKOFF_MAX_SECONDS``.
    #   SIGTERM interrupts the wait (the message is then not committed, and is re-delivered).
    return _checked("EVENT_BUS_OUTBOX_CONSUMER_RETRY_BACKOFF_SECONDS", 1.0, require_number, inclusive=True)


def consumer_retry_backoff_max():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_RETRY_BACKOFF_MAX_SECONDS
    # .. setting_default: 30.0
    # .. setting_description: Upper bound of one wait between receiver retries.
    return _checked("EVENT_BUS_OUTBOX_CONSUMER_RETRY_BACKOFF_MAX_SECONDS", 30.0, require_number, inclusive=True)


def consumer_dead_letter_topic():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TOPIC
    # .. setting_default: None
    # .. setting_description: Kafka topic (used exactly as written: ``EVENT_BUS_TOPIC_PREFIX`` is
    #   not added) that receives, with the original key, value and headers plus ``dlt_*`` error
    #   headers, every message that is unusable or whose receivers failed after all retries.
    #   The consumer waits for the broker's acknowledgement before committing past it. When
    #   unset, such messages are logged (never with their payload) and skipped, as
    #   edx-event-bus-kafka does.
    return _checked("EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TOPIC", None, require_topic_name)


def consumer_dead_letter_timeout():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TIMEOUT_SECONDS
    # .. setting_default: 30.0
    # .. setting_description: How long the consumer waits for the broker to acknowledge a
    #   dead-lettered message (librdkafka's ``message.timeout.ms`` for the dead-letter
    #   producer). Without the acknowledgement the original message is not committed past: the
    #   consumer stops, and the message is read again when it restarts.
    return _checked("EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TIMEOUT_SECONDS", 30.0, require_positive_seconds)


def consumer_metrics_port():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_METRICS_PORT
    # .. setting_default: None
    # .. setting_description: TCP port on which the consumer that ``consume_events`` runs serves
    #   ``/metrics`` (Prometheus text format) and ``/healthz`` (200 while its poll loop turns:
    #   it polled Kafka within ``max.poll.interval.ms``, else 503). ``None`` serves nothing. One
    #   port per process: a second consumer on the same host needs another. See docs/monitoring.rst.
    return _checked("EVENT_BUS_OUTBOX_CONSUMER_METRICS_PORT", None, require_port)


def consumer_deduplicate():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_DEDUPLICATE
    # .. setting_default: False
    # .. setting_description: When True, each receiver that handled an event successfully is
    #   recorded in the consumer inbox table per (consumer group, ``ce_id``), and is not called
    #   again for that event when the message is re-delivered (after a crash, a rebalance, or a
    #   duplicate publish). Receivers are claimed before they run, so two consumers holding
    #   the same message do not both run one. Costs one SELECT, one INSERT, one SELECT and
    #   one UPDATE per message on ``EVENT_BUS_OUTBOX_DATABASE``. Purge old rows with
    #   ``purge_consumer_inbox``. Every receiver needs a stable identity (see docs/consumer.rst).
    return _checked("EVENT_BUS_OUTBOX_CONSUMER_DEDUPLICATE", False, require_bool)


def consumer_inbox_claim_seconds():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_INBOX_CLAIM_SECONDS
    # .. setting_default: 300.0
    # .. setting_description: With deduplication on, a consumer claims each receiver in the
    #   inbox before running it, and another consumer holding the same message (during a
    #   rebalance) waits for that claim instead of running the receiver too. A claim older than
    #   this many seconds is presumed abandoned (its consumer died) and is taken over. Keep it
    #   above the longest a receiver runs, retries included; the default matches librdkafka's
    #   ``max.poll.interval.ms``.
    return _checked("EVENT_BUS_OUTBOX_CONSUMER_INBOX_CLAIM_SECONDS", 300.0, require_positive_seconds)


def consumer_inbox_retention_days():
    # .. setting_name: EVENT_BUS_OUTBOX_CONSUMER_INBOX_RETENTION_DAYS
    # .. setting_default: 7
    # .. setting_description: ``purge_consumer_inbox`` deletes inbox rows older than this many
    #   days. An event re-delivered after its rows were purged is handled again, so keep this
    #   longer than any replay window you use (``offset_time``) and the topic's retention.
    return _checked("EVENT_BUS_OUTBOX_CONSUMER_INBOX_RETENTION_DAYS", 7, require_number, inclusive=True)


# ---------------------------------------------------------------- all of them, at startup


def _kafka_credentials_paired():
    if bool(kafka_api_key()) != bool(kafka_api_secret()):
        raise OutboxConfigurationError(
            "EVENT_BUS_KAFKA_API_KEY and EVENT_BUS_KAFKA_API_SECRET must be set together: with only one, "
            "no authentication is attempted."
        )


def _redis_url_when_a_topic_uses_redis():
    if uses_redis() and not redis_connection_url():
        raise OutboxConfigurationError(
            "EVENT_BUS_REDIS_CONNECTION_URL must be set: EVENT_BUS_OUTBOX_SINK or EVENT_BUS_OUTBOX_TOPIC_SINKS "
            "sends topics to Redis."
        )


def _on_commit_topics_use_kafka():
    """The ``on-commit`` mode publishes straight to Kafka: a topic whose sink is Redis needs the outbox."""
    for event_type, topics in producer_config().items():
        for topic, options in (topics if isinstance(topics, dict) else {}).items():
            mode = (options.get("mode") if isinstance(options, dict) else None) or default_mode()
            if mode == MODE_ON_COMMIT and sink_for(topic) == SINK_REDIS:
                raise OutboxConfigurationError(
                    f"EVENT_BUS_PRODUCER_CONFIG[{event_type!r}][{topic!r}] is produced in the 'on-commit' mode, which "
                    "publishes to Kafka only, but EVENT_BUS_OUTBOX_SINK or EVENT_BUS_OUTBOX_TOPIC_SINKS sends the "
                    "topic to Redis: use the 'outbox' mode for it."
                )


def _relay_timing():
    check_relay_timing(
        relay_lease_seconds(),
        relay_poll_interval(),
        lease_name="EVENT_BUS_OUTBOX_RELAY_LEASE_SECONDS",
        poll_name="EVENT_BUS_OUTBOX_RELAY_POLL_INTERVAL",
    )


CHECKS = (
    bootstrap_servers,
    kafka_api_key,
    kafka_api_secret,
    schema_registry_url,
    schema_registry_api_key,
    schema_registry_api_secret,
    schema_registry_timeout,
    kafka_client_config,
    schema_registry_client_config,
    topic_prefix,
    audit_logging_enabled,
    default_sink,
    topic_sinks,
    redis_connection_url,
    redis_stream_max_len,
    producer_config,
    check_producer_config,
    default_mode,
    topic_modes,
    check_topic_modes,
    topic_lanes,
    check_topic_lanes,
    database_alias,
    propagate_send_errors,
    max_event_bytes,
    relay_batch_size,
    relay_batch_max_bytes,
    relay_poll_interval,
    relay_lease_seconds,
    relay_max_attempts,
    relay_dead_after_seconds,
    relay_backoff_seconds,
    relay_lanes,
    relay_listen,
    relay_exactly_once,
    relay_transactions_topic,
    relay_heartbeat_file,
    relay_metrics_port,
    metrics_address,
    delete_on_ack,
    status_max_pending_age,
    status_max_dead,
    retention_days,
    purge_batch_size,
    consumers_enabled,
    consumer_poll_timeout,
    consumer_poll_failure_sleep,
    consumer_consecutive_errors_limit,
    consumer_kafka_config,
    consumer_commit_interval,
    consumer_max_retries,
    consumer_retry_backoff,
    consumer_retry_backoff_max,
    consumer_dead_letter_topic,
    consumer_dead_letter_timeout,
    consumer_metrics_port,
    consumer_deduplicate,
    consumer_inbox_claim_seconds,
    consumer_inbox_retention_days,
    _kafka_credentials_paired,
    _redis_url_when_a_topic_uses_redis,
    _on_commit_topics_use_kafka,
    _client_properties_not_owned,
    _relay_timing,  # relations between two settings
)


def configuration_errors() -> list:
    """Every problem with the settings, one ``OutboxConfigurationError`` each (a relation only once)."""
    found = []
    for check in CHECKS:
        try:
            check()
        except OutboxConfigurationError as exc:
            if str(exc) not in map(str, found):
                found.append(exc)
    return found


def check_settings():
    """Raise one ``OutboxConfigurationError`` listing every invalid setting, or return."""
    found = configuration_errors()
    if len(found) == 1:
        raise found[0]
    if found:
        raise OutboxConfigurationError(f"{len(found)} settings are invalid: " + " ".join(map(str, found)))
