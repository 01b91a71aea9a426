"""
Lanes: what a relay holds a lease on and drains in id order (ADR 1, 2, 22).

A topic is one lane, named by the topic, unless ``EVENT_BUS_OUTBOX_TOPIC_LANES`` splits it into
``count`` lanes: then a row's lane is a stable hash of its event key modulo ``count``, written
into the row (``lane_count``, ``lane_index``) with the event, and named ``"{topic}#{index}/{count}"``.
Rows of one key are in one lane for as long as ``count`` stays the same.
"""

import zlib
from typing import NamedTuple

from .. import conf
from .held import canonical_key


class Lane(NamedTuple):
    topic: str
    count: int = 1
    index: int = 0

    @property
    def name(self) -> str:
        return self.topic if self.count == 1 else f"{self.topic}#{self.index}/{self.count}"


def parse_lane(name: str) -> Lane:
    """The lane a name stands for; names come from ``Lane.name`` or were checked (``conf.require_lane_names``)."""
    topic, split, rest = name.partition("#")
    if not split:
        return Lane(topic)
    index, _, count = rest.partition("/")
    return Lane(topic, int(count), int(index))


def lane_of(row) -> str:
    """The name of a row's lane, from its ``topic``, ``lane_count`` and ``lane_index``."""
    return Lane(row.topic, row.lane_count, row.lane_index).name


def lane_columns(topic: str, event_key) -> dict:
    """The row's lane columns, or ``{}`` for a topic of one lane (the columns' defaults)."""
    count = conf.topic_lanes().get(topic, 1)
    if count == 1:
        return {}
    return {"lane_count": count, "lane_index": zlib.crc32(canonical_key(event_key).encode()) % count}
