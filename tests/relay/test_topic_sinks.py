"""
Which sink a topic's batch goes to, and what Redis errors mean; no service needed (the Redis
client connects only when a command is sent).
"""

import pytest
from redis import exceptions

from edx_event_bus_outbox.exceptions import OutboxConfigurationError
from edx_event_bus_outbox.relay.errors import InfrastructureUnavailable, classify_redis_error
from edx_event_bus_outbox.relay.redis_sink import RedisSink
from edx_event_bus_outbox.relay.sink import KafkaSink
from edx_event_bus_outbox.relay.topic_sinks import TopicSinks
from tests.relay.sinks import AcceptingSink

ROW = type("Row", (), {})


def rows_of(topic, count=2):
    made = []
    for index in range(count):
        row = ROW()
        row.id, row.topic, row.event_id = index + 1, topic, f"id-{topic}-{index}"
        made.append(row)
    return made


def test_a_redis_only_deployment_builds_no_kafka_producer(settings):
    settings.EVENT_BUS_OUTBOX_SINK = "redis"
    settings.EVENT_BUS_REDIS_CONNECTION_URL = "redis://127.0.0.1:1/0"
    settings.EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS = None
    sinks = TopicSinks(30)
    assert [type(sink) for sink in sinks.built.values()] == [RedisSink]
    assert isinstance(sinks.sink("any-topic"), RedisSink)


def test_the_default_sink_is_built_at_once_so_a_missing_setting_fails_at_startup(settings):
    settings.EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS = None
    with pytest.raises(OutboxConfigurationError, match="EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS is not set"):
        TopicSinks(30)


def test_each_topics_batch_goes_to_its_own_sink(settings):
    settings.EVENT_BUS_REDIS_CONNECTION_URL = "redis://127.0.0.1:1/0"
    settings.EVENT_BUS_OUTBOX_TOPIC_SINKS = {"to-redis": "redis"}
    sinks = TopicSinks(30)
    assert isinstance(sinks.sink("to-kafka"), KafkaSink) and isinstance(sinks.sink("to-redis"), RedisSink)
    sinks.built = {"kafka": AcceptingSink(), "redis": AcceptingSink()}
    sinks.publish(rows_of("to-kafka"))
    sinks.publish(rows_of("to-redis", 3))
    assert sinks.built["kafka"].published == ["id-to-kafka-0", "id-to-kafka-1"]
    assert sinks.built["redis"].published == ["id-to-redis-0", "id-to-redis-1", "id-to-redis-2"]


@pytest.mark.parametrize(
    "error, says",
    [
        (
            exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
            "cannot be reached",
        ),
        (exceptions.TimeoutError("Timeout reading from socket"), "cannot be reached"),
        (exceptions.BusyLoadingError("Redis is loading the dataset in memory"), "loading its data"),
        (exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), "Redis is full"),
        (exceptions.ReadOnlyError("You can't write against a read only replica."), "read-only replica"),
        (exceptions.AuthenticationError("invalid username-password pair"), "check EVENT_BUS_REDIS_CONNECTION_URL"),
        (exceptions.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), "refused"),
    ],
)
def test_every_redis_error_is_an_outage_that_says_what_to_do(error, says):
    classified = classify_redis_error(error)
    assert isinstance(classified, InfrastructureUnavailable)
    assert says in str(classified)
