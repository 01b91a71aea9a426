"""Turn Django settings into librdkafka and schema registry configuration."""

from functools import lru_cache

from django.dispatch import receiver
from django.test.signals import setting_changed
from openedx_events.data import get_service_name

from .. import conf
from ..exceptions import OutboxConfigurationError


def full_topic(base_topic: str) -> str:
    """The topic name on the broker: ``{EVENT_BUS_TOPIC_PREFIX}-{topic}``, or the topic alone."""
    prefix = conf.topic_prefix()
    return f"{prefix}-{base_topic}" if prefix else base_topic


def common_client_config() -> dict:
    """librdkafka settings shared by producers and consumers."""
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
    return config


def producer_config(**overrides) -> dict:
    """
    An idempotent producer: acks=all, and retries never reorder or duplicate a partition.

    Ordering per key depends on this (see docs/decisions/0001-ordering-and-claiming.rst).
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
    return SchemaRegistryClient(config)


@receiver(setting_changed)
def _forget_cached_clients(**kwargs):
    schema_registry_client.cache_clear()


CONSUMER_OWNED_PROPERTIES = ("group.id", "enable.auto.commit", "enable.auto.offset.store")


def consumer_config(group_id: str, **overrides) -> dict:
    """
    A consumer that never commits or stores offsets by itself.

    The caller commits a message's offset only once the message was processed or dead-lettered
    (at-least-once; see docs/decisions/0006-consumer-at-least-once.rst), so the properties that
    would let librdkafka commit earlier are always forced, whatever ``overrides`` says.
    """
    config = common_client_config()
    config.update(overrides)
    config.update(
        {
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        }
    )
    return config
