"""
EVENT_BUS_OUTBOX_KAFKA_CONFIG and EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_CONFIG: merge order, the
properties the package owns, and secrets kept out of logs and errors (ADR 13). No broker:
``tests/test_secured_kafka.py`` shows the same clients against the SASL_SSL listener.
"""

import logging

import pytest
from confluent_kafka import Producer
from django.core.management import CommandError, call_command

from edx_event_bus_outbox import KafkaEventConsumer, conf
from edx_event_bus_outbox.consumer.dead_letter import DeadLetterProducer
from edx_event_bus_outbox.exceptions import OutboxConfigurationError, OwnedPropertyError
from edx_event_bus_outbox.kafka import config
from edx_event_bus_outbox.kafka.secrets import MASK, is_secret, redacted, without_secrets
from edx_event_bus_outbox.outbox import on_commit
from edx_event_bus_outbox.relay.sink import KafkaSink

SECRET = "hunter2-s3cr3t"
SCRAM = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "SCRAM-SHA-512",
    "sasl.username": "relay",
    "sasl.password": SECRET,
}


@pytest.fixture
def built(monkeypatch):
    """The configuration of every Kafka client built through ``config.kafka_client``, by client class name."""
    configs = {}
    real = config.kafka_client

    def recording(client_class, client_config):
        configs.setdefault(client_class.__name__, []).append(dict(client_config))
        return real(client_class, client_config)

    for module in ("relay.sink", "outbox.on_commit", "consumer.dead_letter", "consumer.consumer"):
        monkeypatch.setattr(f"edx_event_bus_outbox.{module}.kafka_client", recording)
    return configs


def test_every_kafka_client_takes_the_shared_properties(settings, built, monkeypatch):
    settings.EVENT_BUS_OUTBOX_KAFKA_CONFIG = {**SCRAM, "socket.keepalive.enable": True}
    monkeypatch.setattr(on_commit, "_producer", None)
    KafkaSink(3.0)
    on_commit._get_producer()
    DeadLetterProducer("dead-letters", "g")._get_producer()
    consumer_config = KafkaEventConsumer(topic="t", group_id="g").kafka_config

    producers = built["Producer"]
    assert len(producers) == 3  # the relay's, the on-commit one, the dead-letter one
    for client_config in [*producers, consumer_config]:
        assert {name: client_config[name] for name in SCRAM} == SCRAM
        assert client_config["socket.keepalive.enable"] is True
    for producer in producers:
        assert (producer["enable.idempotence"], producer["acks"]) == (True, "all")
    assert producers[0]["message.timeout.ms"] == 1000 and producers[2]["message.timeout.ms"] == 30000


def test_merge_order_defaults_then_shared_then_consumer_then_owned(settings):
    settings.EVENT_BUS_KAFKA_API_KEY, settings.EVENT_BUS_KAFKA_API_SECRET = "key", "secret"
    settings.EVENT_BUS_OUTBOX_KAFKA_CONFIG = {"sasl.mechanism": "SCRAM-SHA-256", "session.timeout.ms": 10000}
    settings.EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG = {"session.timeout.ms": 20000}

    producer = config.producer_config()
    assert (producer["sasl.mechanism"], producer["sasl.username"], producer["security.protocol"]) == (
        "SCRAM-SHA-256",  # the shared setting over the PLAIN default of EVENT_BUS_KAFKA_API_KEY
        "key",
        "SASL_SSL",
    )
    consumer = config.consumer_config("g")
    assert consumer["session.timeout.ms"] == 20000 and consumer["sasl.mechanism"] == "SCRAM-SHA-256"
    assert (consumer["group.id"], consumer["enable.auto.commit"], consumer["enable.auto.offset.store"]) == (
        "g",
        False,
        False,
    )


@pytest.mark.parametrize("name", sorted(config.OWNED_KAFKA_PROPERTIES))
def test_a_property_the_package_owns_is_refused_at_startup_by_name(settings, name):
    settings.EVENT_BUS_OUTBOX_KAFKA_CONFIG = {name: "x", "linger.ms": 5}
    with pytest.raises(OwnedPropertyError, match=f"EVENT_BUS_OUTBOX_KAFKA_CONFIG may not set '{name}'") as raised:
        conf.check_settings()
    assert raised.value.properties == [name]
    with pytest.raises(OwnedPropertyError, match=name):
        KafkaEventConsumer(topic="t", group_id="g")
    with pytest.raises(OwnedPropertyError, match=name):
        config.producer_config()  # the on-commit producer, built at first use, refuses it too


def test_the_relay_does_not_start_with_an_owned_property(settings):
    settings.EVENT_BUS_OUTBOX_KAFKA_CONFIG = {"enable.idempotence": False, "acks": 1}
    with pytest.raises(CommandError, match="may not set 'acks', 'enable.idempotence'.*The relay did not start"):
        call_command("run_outbox_relay", "--until-empty")


@pytest.mark.parametrize("name", sorted(config.OWNED_REGISTRY_PROPERTIES))
def test_the_registry_url_and_timeout_come_from_their_own_settings(settings, name):
    settings.EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_CONFIG = {name: "x"}
    with pytest.raises(OwnedPropertyError, match=f"EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_CONFIG may not set '{name}'"):
        conf.check_settings()


def test_registry_settings_reach_the_client_on_top_of_the_basic_auth_settings(settings):
    settings.EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_KEY = "user"
    settings.EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_SECRET = SECRET
    client = config.schema_registry_client()
    assert client._rest_client.auth == ("user", SECRET)  # edx-event-bus-kafka's settings still work

    settings.EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_CONFIG = {"basic.auth.user.info": "other:pw", "max.retries": 0}
    client = config.schema_registry_client()
    assert client._rest_client.auth == ("other", "pw") and client._rest_client.max_retries == 0


def test_a_registry_setting_the_client_refuses_is_a_configuration_error_without_secrets(settings):
    settings.EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_CONFIG = {"basic.auth.user.info": f"u:{SECRET}", "no.such": SECRET}
    with pytest.raises(OutboxConfigurationError, match="Unrecognized properties: no.such") as raised:
        config.schema_registry_client()
    assert SECRET not in str(raised.value) and raised.value.__cause__ is None and raised.value.__context__ is None


def test_a_property_librdkafka_refuses_is_a_configuration_error_without_secrets(settings):
    # librdkafka quotes a refused value; here it is the password's.
    settings.EVENT_BUS_OUTBOX_KAFKA_CONFIG = {**SCRAM, "security.protocol": SECRET}
    with pytest.raises(OutboxConfigurationError, match="librdkafka refused the Producer configuration") as raised:
        config.kafka_client(Producer, config.producer_config())
    assert SECRET not in str(raised.value) and MASK in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__context__ is None


def test_a_client_configuration_is_logged_without_its_secrets(settings, caplog):
    settings.EVENT_BUS_OUTBOX_KAFKA_CONFIG = {**SCRAM, "ssl.key.password": SECRET + "-key"}
    with caplog.at_level(logging.INFO):
        config.kafka_client(Producer, config.producer_config()).flush(0)
    assert "sasl.username': 'relay'" in caplog.text and "SCRAM-SHA-512" in caplog.text
    assert SECRET not in caplog.text


def test_a_value_of_the_wrong_type_is_refused_without_showing_it(settings):
    settings.EVENT_BUS_OUTBOX_KAFKA_CONFIG = {"sasl.password": [SECRET]}
    with pytest.raises(OutboxConfigurationError, match=r"EVENT_BUS_OUTBOX_KAFKA_CONFIG\['sasl.password'\]") as raised:
        conf.check_settings()
    assert SECRET not in str(raised.value)


@pytest.mark.parametrize(
    "name",
    [
        "sasl.password",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.config",
        "sasl.oauthbearer.assertion.private.key.passphrase",
        "sasl.oauthbearer.assertion.private.key.pem",
        "ssl.key.password",
        "ssl.keystore.password",
        "ssl.key.pem",
        "basic.auth.user.info",
        "bearer.auth.token",
        "bearer.auth.client.secret",
    ],
)
def test_secret_properties_are_known_by_name(name):
    assert is_secret(name)
    assert redacted({name: SECRET, "sasl.username": "relay"}) == {name: MASK, "sasl.username": "relay"}


@pytest.mark.parametrize(
    "name", ["sasl.username", "ssl.ca.location", "ssl.key.location", "sasl.oauthbearer.token.endpoint.url", "url"]
)
def test_other_properties_are_shown(name):
    assert not is_secret(name) and redacted({name: "value"}) == {name: "value"}


def test_secret_values_and_url_credentials_are_masked_in_a_text():
    text = f"failed for user:{SECRET} at https://user:{SECRET}@registry.example/ and {SECRET}"
    masked = without_secrets(text, {"basic.auth.user.info": f"user:{SECRET}", "sasl.username": "user"})
    assert SECRET not in masked
    assert masked == f"failed for {MASK} at https://{MASK}@registry.example/ and {MASK}"
