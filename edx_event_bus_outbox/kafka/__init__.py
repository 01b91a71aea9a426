"""
Kafka knowledge shared by the relay, the ``on-commit`` mode and the consumer.

* ``config``: settings -> librdkafka configuration, schema registry client, topic names.
* ``headers``: ``EventsMetadata`` <-> CloudEvents message headers.
* ``serialization``: Avro schemas, keys and the registry-backed (de)serializers.

Everything here is byte-compatible with edx-event-bus-kafka 6.x (see docs/wire-format.rst).
"""
