"""
Kafka knowledge shared by the relay, the ``on-commit`` mode and the consumer.

* ``config``: settings -> librdkafka configuration, schema registry client, topic names.
* ``headers``: ``EventsMetadata`` <-> CloudEvents message headers.
* ``schemas``: a signal's Avro schema, its event key and the key's sub-schema.
* ``framing``: Confluent's framing (magic byte, schema id) of a registry-backed value.
* ``encoding``: Avro-ready data -> framed Avro, registering schemas (relay, ``on-commit``).
* ``decoding``: framed Avro -> event data, with the local schema as reader (consumer).
* ``messages``: the whole Kafka message (topic, key, value, headers) of an event.
* ``errors``: whether a Kafka or registry error is the message's fault or the service's.

Everything here is byte-compatible with edx-event-bus-kafka 6.x (see docs/wire-format.rst).
"""
