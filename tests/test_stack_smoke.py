"""
The stack is real: a topic on the Kafka broker, an Avro schema in the registry through
``SchemaRegistryClient``, a message produced with ``AvroSerializer`` and read back with
``AvroDeserializer``, and the registry enforcing BACKWARD compatibility like Confluent's.
"""

import json
import os
import uuid
from urllib.parse import urlparse

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

pytestmark = pytest.mark.kafka


def _record(namespace, *fields):
    return json.dumps({"type": "record", "name": "Thing", "namespace": namespace, "fields": list(fields)})


def test_avro_round_trip_through_the_real_broker_and_registry(kafka_stack, topic):
    registry = kafka_stack.registry()
    namespace = f"smoke.n{uuid.uuid4().hex[:8]}"
    schema = _record(namespace, {"name": "id", "type": "string"}, {"name": "n", "type": "int"})
    strategy = {"subject.name.strategy": topic_record_subject_name_strategy}
    context = SerializationContext(topic, MessageField.VALUE)

    value = AvroSerializer(registry, schema, conf=strategy)({"id": "a", "n": 7}, context)
    producer = Producer({"bootstrap.servers": kafka_stack.bootstrap_servers})
    producer.produce(topic, value=value)
    assert producer.flush(30) == 0

    (message,) = kafka_stack.read_all(topic, expected=1)
    assert AvroDeserializer(registry)(message.value(), context) == {"id": "a", "n": 7}
    subject = f"{topic}-{namespace}.Thing"
    registered = registry.get_latest_version(subject)
    assert registered.version == 1 and int.from_bytes(message.value()[1:5], "big") == registered.schema_id


def test_registry_refuses_an_incompatible_schema_and_accepts_a_compatible_one(kafka_stack):
    registry = kafka_stack.registry()
    namespace = f"smoke.n{uuid.uuid4().hex[:8]}"
    subject = f"smoke-{namespace}"
    registry.register_schema(subject, Schema(_record(namespace, {"name": "id", "type": "string"}), "AVRO"))
    with_default = _record(namespace, {"name": "id", "type": "string"}, {"name": "n", "type": "int", "default": 0})
    registry.register_schema(subject, Schema(with_default, "AVRO"))
    with pytest.raises(SchemaRegistryError) as refused:
        registry.register_schema(subject, Schema(_record(namespace, {"name": "id", "type": "int"}), "AVRO"))
    assert refused.value.http_status_code == 409
    assert registry.get_latest_version(subject).version == 2


@pytest.mark.parametrize("variable", ["OUTBOX_TEST_POSTGRES_URL", "OUTBOX_TEST_MYSQL_URL"])
def test_database_servers_answer(variable):
    url = os.environ.get(variable)
    if not url:
        pytest.fail(f"{variable} is not set; run `make stack-up`", pytrace=False)
    parsed = urlparse(url)
    if parsed.scheme.startswith("postgres"):
        import psycopg

        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
    else:
        import MySQLdb

        connection = MySQLdb.connect(
            host=parsed.hostname,
            port=parsed.port,
            user=parsed.username,
            password=parsed.password,
            database=parsed.path.lstrip("/"),
        )
        cursor = connection.cursor()
        cursor.execute("SELECT VERSION()")
        assert "MariaDB" in cursor.fetchone()[0]
        connection.close()
