"""Smoke check of a running local stack (see docs/stack.rst).

    .venv/bin/python stack/smoke.py

Reads .stack/env, then: creates a topic, registers an Avro schema through
SchemaRegistryClient, produces with AvroSerializer and reads back with AvroDeserializer,
for TopicNameStrategy and TopicRecordNameStrategy subjects; checks that a compatible
evolution is accepted and an incompatible one refused (global BACKWARD); connects to
PostgreSQL, MariaDB and Redis with the URLs from the env file. Exits non-zero on failure.
"""

import json
import pathlib
import sys
import time
import uuid
from urllib.parse import urlparse

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from edx_event_bus_outbox.kafka.topics import create_topics

ENV_FILE = pathlib.Path(__file__).resolve().parent.parent / ".stack" / "env"
env = dict(line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if "=" in line and not line.startswith("#"))


def check_kafka_and_registry():
    bootstrap = env["EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"]
    topic = "smoke-" + uuid.uuid4().hex[:8]
    create_topics({"bootstrap.servers": bootstrap}, {topic: 1})  # returns once its partition has a leader
    # A timeout, or a request the registry never answers blocks the check for ever.
    registry = SchemaRegistryClient({"url": env["EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL"], "timeout": 10})
    namespace = "smoke.n" + uuid.uuid4().hex[:6]

    def record(*fields):
        return json.dumps({"type": "record", "name": "Thing", "namespace": namespace, "fields": list(fields)})

    v1 = record({"name": "id", "type": "string"})
    v2 = record({"name": "id", "type": "string"}, {"name": "n", "type": "int", "default": 0})
    incompatible = record({"name": "id", "type": "int"})
    strategies = {
        "topic": ({}, f"{topic}-value"),
        "topic_record": ({"subject.name.strategy": topic_record_subject_name_strategy}, f"{topic}-{namespace}.Thing"),
    }
    for name, (conf, subject) in strategies.items():
        serializer = AvroSerializer(registry, v1, conf=conf)
        value = serializer({"id": name}, SerializationContext(topic, MessageField.VALUE))
        producer = Producer({"bootstrap.servers": bootstrap})
        producer.produce(topic, value=value)
        assert producer.flush(10) == 0
        assert registry.get_latest_version(subject).version == 1
        registry.register_schema(subject, Schema(v2, "AVRO"))
        try:
            registry.register_schema(subject, Schema(incompatible, "AVRO"))
            sys.exit(f"FAIL: registry accepted an incompatible schema under {subject}")
        except SchemaRegistryError as e:
            assert e.http_status_code == 409, e
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "smoke-" + uuid.uuid4().hex[:6],
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([topic])
        deserializer, seen, deadline = AvroDeserializer(registry), [], time.time() + 30
        while time.time() < deadline and {"id": name} not in seen:
            msg = consumer.poll(1)
            if msg is not None and not msg.error():
                seen.append(deserializer(msg.value(), SerializationContext(topic, MessageField.VALUE)))
        consumer.close()
        assert {"id": name} in seen, seen
        print(f"kafka+registry ok ({name} strategy, subject {subject})")


def check_databases():
    import MySQLdb
    import psycopg
    import redis

    with psycopg.connect(env["OUTBOX_TEST_POSTGRES_URL"]) as conn:
        conn.execute("SELECT 1")
    print("postgres ok")
    url = urlparse(env["OUTBOX_TEST_MYSQL_URL"])
    conn = MySQLdb.connect(
        host=url.hostname, port=url.port, user=url.username, password=url.password, database=url.path[1:]
    )
    conn.cursor().execute("SELECT 1")
    conn.close()
    print("mariadb ok")
    assert redis.Redis.from_url(env["OUTBOX_TEST_REDIS_URL"]).ping()
    print("redis ok")


if __name__ == "__main__":
    check_kafka_and_registry()
    check_databases()
    print("OK")
