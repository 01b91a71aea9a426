"""
The Kafka consumer behind ``EVENT_BUS_CONSUMER = "edx_event_bus_outbox.KafkaEventConsumer"``.

* ``consumer``: the poll loop (``KafkaEventConsumer``).
* ``decoding``: a Kafka message -> signal, event data and metadata, or why it is unusable.
* ``dispatch``: emit the signal, retrying only the receivers that failed.
* ``offsets``: which offsets may be committed, and when.
* ``dead_letter``: the dead-letter topic producer.
* ``inbox`` / ``models``: optional per-receiver deduplication.
* ``replay``: ``offset_time``, seeking on assignment.
* ``monitoring``: custom attributes, traces and audit log lines, as edx-event-bus-kafka has them.
* ``shutdown``: SIGTERM -> a graceful stop.
* ``work_cycle``: the per-message database and request-cache housekeeping.
* ``errors``: the consumer's exceptions.

See docs/consumer.rst and docs/decisions/0006-consumer-at-least-once.rst.
"""
