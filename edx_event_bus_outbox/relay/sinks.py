"""
Which sink publishes a topic's rows.

Kafka for every topic for now. Issue 16's Redis Streams sink chooses per topic here, from
``EVENT_BUS_OUTBOX_SINK`` and ``EVENT_BUS_OUTBOX_TOPIC_SINKS``; every sink has ``KafkaSink``'s
``publish(rows, deadline) -> list[Delivery]`` and ``close()``.
"""

from .sink import KafkaSink


def sink_for_topic(topic, made: dict, lease_seconds: float):  # noqa: ARG001  read once Redis is a choice
    """The sink for ``topic``: one of each kind, made on first use and kept in the caller's ``made``."""
    kind = "kafka"
    if kind not in made:
        made[kind] = KafkaSink(lease_seconds)
    return made[kind]
