"""
Turn Django settings into the configuration of every Kafka and schema registry client.

Every client the package builds -- the relay's producer, the ``on-commit`` producer, the
consumer and its dead-letter producer, the registry client -- is configured here, merged in
one order (docs/decisions/0013-owned-client-properties.rst):

1. what edx-event-bus-kafka's settings give: ``bootstrap.servers``, SASL/PLAIN from
   ``EVENT_BUS_KAFKA_API_KEY``/``_SECRET``, ``client.id`` (registry: ``url``, ``timeout`` and
   basic auth from ``EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_KEY``/``_SECRET``);
2. ``EVENT_BUS_OUTBOX_KAFKA_CONFIG`` (registry: ``EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_CONFIG``);
3. for the consumer only, ``EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG``;
4. the properties the package owns, which the settings of steps 2 and 3 may not name.
"""

import logging
from functools import lru_cache

from django.dispatch import receiver
from django.test.signals import setting_changed
from openedx_events.data import get_service_name

from .. import conf
from ..exceptions import OutboxConfigurationError, OwnedPropertyError
from .errors import log_client_error
from .secrets import redacted, without_secrets

logger = logging.getLogger(__name__)

_TIMEOUTS = (
    "the relay's is a third of EVENT_BUS_OUTBOX_RELAY_LEASE_SECONDS, so that a batch settles within its lease; "
    "the dead-letter producer's is EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TIMEOUT_SECONDS"
)
_OFFSETS = "the consumer stores and commits an offset only once its message was processed or dead-lettered (ADR 6)"
_ACKS = "a row is marked sent only once every in-sync replica has it (acks=all)"
_SERVERS = "it comes from EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"

# librdkafka properties (and their aliases) that only the package sets, and why.
OWNED_KAFKA_PROPERTIES = {
    "bootstrap.servers": _SERVERS,
    "metadata.broker.list": _SERVERS,
    "error_cb": "the package logs authentication and TLS failures, and replaces a relay producer after a fatal error",
    "enable.idempotence": "producers are idempotent, so that a retry never reorders or duplicates a key (ADR 1)",
    "acks": _ACKS,
    "request.required.acks": _ACKS,
    "transactional.id": "an exactly-once relay derives each lane's from the topic prefix, the service and the lane "
    "(EVENT_BUS_OUTBOX_RELAY_EXACTLY_ONCE); the other producers are not transactional",
    "transaction.timeout.ms": "it is the relay's lease, so that a dead relay's open transaction is aborted by the "
    "time its lane is taken over",
    "isolation.level": "the consumer and the relay's marker reader read committed data only",
    "message.timeout.ms": _TIMEOUTS,
    "delivery.timeout.ms": _TIMEOUTS,
    "delivery.report.only.error": "the relay marks a row sent when the row's delivery report arrives",
    "group.id": "the consumer group comes from consume_events -g",
    "enable.auto.commit": _OFFSETS,
    "enable.auto.offset.store": _OFFSETS,
}

# SchemaRegistryClient settings that come from settings of their own.
OWNED_REGISTRY_PROPERTIES = {
    "url": "it comes from EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL",
    "timeout": "it comes from EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_TIMEOUT_SECONDS",
}


def _not_owned(setting, properties, owned):
    taken = set(properties) & set(owned)
    if taken:
        raise OwnedPropertyError(setting, {name: owned[name] for name in taken})
    return properties


def shared_kafka_properties() -> dict:
    """``EVENT_BUS_OUTBOX_KAFKA_CONFIG``, refused if it names a property the package owns."""
    return _not_owned("EVENT_BUS_OUTBOX_KAFKA_CONFIG", conf.kafka_client_config(), OWNED_KAFKA_PROPERTIES)


def consumer_kafka_properties() -> dict:
    return _not_owned("EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG", conf.consumer_kafka_config(), OWNED_KAFKA_PROPERTIES)


def schema_registry_properties() -> dict:
    return _not_owned(
        "EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_CONFIG", conf.schema_registry_client_config(), OWNED_REGISTRY_PROPERTIES
    )


def check_client_properties():
    """At startup (``conf.check_settings``): no client settings dict names a property the package owns."""
    shared_kafka_properties()
    consumer_kafka_properties()
    schema_registry_properties()


@lru_cache(maxsize=1024)
def full_topic(base_topic: str) -> str:
    """
    The topic name on the broker: ``{EVENT_BUS_TOPIC_PREFIX}-{topic}``, or the topic alone.

    Cached: the relay asks once per message, and reading and checking the setting costs more
    than encoding the message's key.
    """
    prefix = conf.topic_prefix()
    return f"{prefix}-{base_topic}" if prefix else base_topic


def common_client_config() -> dict:
    """Every Kafka client's configuration before its own role's properties (steps 1 and 2), with ``error_cb``."""
    servers = conf.bootstrap_servers()
    if not servers:
        raise OutboxConfigurationError(
            "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS is not set; set it to the broker list (host:port,...)."
        )
    config = {"bootstrap.servers": servers}
    key, secret = conf.kafka_api_key(), conf.kafka_api_secret()
    if key and secret:
        config.update(
            {
                "sasl.mechanism": "PLAIN",
                "security.protocol": "SASL_SSL",
                "sasl.username": key,
                "sasl.password": secret,
            }
        )
    client_id = get_service_name()
    if client_id:
        config["client.id"] = client_id
    config.update(shared_kafka_properties())
    config["error_cb"] = log_client_error
    return config


def producer_config(**overrides) -> dict:
    """
    An idempotent producer: acks=all, and retries never reorder or duplicate a partition.

    Ordering per key depends on this (see docs/decisions/0001-ordering-and-claiming.rst).
    ``overrides`` are the caller's owned properties (``message.timeout.ms``, ``error_cb``).
    """
    config = common_client_config()
    config.update(
        {
            "enable.idempotence": True,
            "acks": "all",
        }
    )
    config.update(overrides)
    return config


def transactional_producer_config(lane: str, lease_seconds: float, **overrides) -> dict:
    """
    The exactly-once relay's producer for one lane. Its ``transactional.id`` is the same for
    every relay of this service and lane, so a new lease holder's ``init_transactions()``
    fences the old one out at the broker, behind the database lease (ADR 20). The service
    name keeps the LMS's and the CMS's relays of a shared topic from fencing each other.
    """
    return producer_config(
        **{
            "transactional.id": transactional_id(lane),
            "transaction.timeout.ms": int(lease_seconds * 1000),
            **overrides,
        }
    )


def transactional_id(lane: str) -> str:
    return full_topic(f"outbox-relay.{get_service_name() or 'service'}.{lane}")


def marker_reader_config(isolation_level: str) -> dict:
    """A consumer that only reads assigned partitions: never joins its group nor commits an offset."""
    config = common_client_config()
    config.update(
        {
            "group.id": "edx-event-bus-outbox-relay-markers",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": isolation_level,
        }
    )
    return config


def consumer_config(group_id: str) -> dict:
    """
    A consumer that never commits or stores offsets by itself.

    The caller commits a message's offset only once the message was processed or dead-lettered
    (at-least-once; see docs/decisions/0006-consumer-at-least-once.rst), so the properties that
    would let librdkafka commit earlier are the package's, never a setting's.
    """
    config = common_client_config()
    config.update(consumer_kafka_properties())
    config.update(
        {
            "isolation.level": "read_committed",
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        }
    )
    return config


def kafka_client(client_class, config: dict):
    """
    ``client_class(config)`` (``Producer``, ``Consumer``, ``AdminClient``), with its configuration
    logged (secrets masked). A property librdkafka refuses becomes an ``OutboxConfigurationError``
    whose text has no secret in it.
    """
    from confluent_kafka import KafkaException

    logger.info("Kafka %s configuration: %s", client_class.__name__, redacted(config))
    try:
        return client_class(config)
    except KafkaException as exc:
        problem = without_secrets(exc.args[0].str() if exc.args else repr(exc), config)
    # Outside the handler: the original exception, which may quote a value, is not chained.
    raise OutboxConfigurationError(
        f"librdkafka refused the {client_class.__name__} configuration: {problem}. Fix EVENT_BUS_OUTBOX_KAFKA_CONFIG "
        "(or EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG)."
    )


@lru_cache(maxsize=1)
def schema_registry_client():
    """One registry client per process; it caches schema ids, which is what makes it cheap."""
    from confluent_kafka.schema_registry import SchemaRegistryClient

    url = conf.schema_registry_url()
    if not url:
        raise OutboxConfigurationError(
            "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL is not set; set it to the Confluent-compatible "
            "registry root (for Apicurio: http://HOST:PORT/apis/ccompat/v7)."
        )
    config = {"url": url, "timeout": conf.schema_registry_timeout()}
    key, secret = conf.schema_registry_api_key(), conf.schema_registry_api_secret()
    if key or secret:
        config["basic.auth.user.info"] = f"{key}:{secret}"
    config.update(schema_registry_properties())
    try:
        return SchemaRegistryClient(config)
    except (ValueError, TypeError, OSError) as exc:  # OSError: ssl.SSLError, a missing file
        problem = without_secrets(f"{type(exc).__name__}: {exc}", config)
    raise OutboxConfigurationError(
        f"The schema registry client refused its configuration: {problem}. Fix EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_CONFIG."
    )


@receiver(setting_changed)
def _forget_cached_settings(**kwargs):
    schema_registry_client.cache_clear()
    full_topic.cache_clear()
