"""
The sink of each topic: Kafka or Redis Streams, by ``EVENT_BUS_OUTBOX_SINK`` and
``EVENT_BUS_OUTBOX_TOPIC_SINKS`` (ADR 17).

A lane is a topic or one of its lanes (outbox/lanes.py), so a batch goes to one sink. The
default sink is built at once, so that a relay missing its settings fails at startup; the
other only when a topic first needs it: a deployment that sends nothing to Kafka needs no
Kafka settings, and one that sends nothing to Redis opens no Redis connection.
"""

from .. import conf
from ..outbox.lanes import parse_lane
from .exactly_once import ExactlyOnceKafkaSink
from .redis_sink import RedisSink
from .sink import KafkaSink


class TopicSinks:
    """The relay's sink: ``publish``, ``can_reach``, ``prepare``, ``forget`` and ``close`` of each topic's sink."""

    def __init__(self, lease_seconds: float, exactly_once: bool = False):
        self.lease_seconds = lease_seconds
        self.kafka_sink = ExactlyOnceKafkaSink if exactly_once else KafkaSink
        self.built = {}
        self._sink_of_kind(conf.default_sink())

    def sink(self, topic):
        return self._sink_of_kind(conf.sink_for(topic))

    def _sink_of_kind(self, kind):
        if kind not in self.built:
            self.built[kind] = (RedisSink if kind == conf.SINK_REDIS else self.kafka_sink)(self.lease_seconds)
        return self.built[kind]

    def publish(self, rows, deadline: float | None = None) -> list:
        return self.sink(rows[0].topic).publish(rows, deadline) if rows else []

    def prepare(self, lane) -> list:
        return self.sink(parse_lane(lane).topic).prepare(lane)

    def forget(self, lane):
        self.sink(parse_lane(lane).topic).forget(lane)

    def can_reach(self, lane) -> bool:
        topic = parse_lane(lane).topic
        return self.sink(topic).can_reach(topic)

    def close(self):
        for sink in self.built.values():
            sink.close()
