"""
A topic split into lanes (ADR 22): a row's lane is fixed when it is written, relays drain the
lanes apart, every key keeps its order, and changing a topic's number of lanes never reorders
a key. On the test database, with a sink that records what it was given.
"""

import random
import zlib
from collections import defaultdict

import pytest

from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.outbox.lanes import Lane, lane_columns, lane_of, parse_lane
from edx_event_bus_outbox.outbox.status import lane_statuses
from edx_event_bus_outbox.relay import store
from edx_event_bus_outbox.relay.backlog import lane_backlog
from edx_event_bus_outbox.relay.relay import Relay, RelayOptions
from edx_event_bus_outbox.relay.sink import AtLeastOnce, Delivery
from tests.outbox_tools import write_events

pytestmark = pytest.mark.django_db(transaction=True)

TOPIC = "split-topic"


class RecordingSink(AtLeastOnce):
    """Acknowledges every row and records ``(lane, row id, key)`` in the order it was published."""

    def __init__(self):
        self.published = []

    def publish(self, rows, deadline=None):
        assert len({lane_of(row) for row in rows}) == 1, "a batch holds one lane's rows"
        self.published += [(lane_of(row), row.id, str(row.event_key)) for row in rows]
        return [Delivery(row.id, 0, 0) for row in rows]

    def close(self):
        pass


def relay(sink, lanes=None, batch_size=7):
    options = RelayOptions(lanes=lanes, batch_size=batch_size, poll_interval=0.01, listen=False, until_empty=True)
    return Relay(options, sink=sink)


def assert_each_key_in_id_order(published):
    by_key = defaultdict(list)
    for lane, row_id, key in published:
        by_key[parse_lane(lane).topic, key].append(row_id)
    assert all(ids == sorted(ids) for ids in by_key.values()), {k: v for k, v in by_key.items() if v != sorted(v)}


def test_a_lane_is_a_stable_hash_of_the_key_and_a_topic_not_split_keeps_the_columns_defaults(settings):
    settings.EVENT_BUS_OUTBOX_TOPIC_LANES = {TOPIC: 4}
    keys = [f"course-v1:edX+K{n}+Run" for n in range(200)]
    lanes = [lane_columns(TOPIC, key) for key in keys]
    assert lanes == [lane_columns(TOPIC, key) for key in keys]
    assert {lane["lane_count"] for lane in lanes} == {4}
    assert {lane["lane_index"] for lane in lanes} == {0, 1, 2, 3}
    assert lane_columns("another-topic", keys[0]) == {}
    # crc32 of the key's canonical JSON: the same in every process and Python version, unlike hash()
    assert lane_columns(TOPIC, "course-v1:edX+K0+Run")["lane_index"] == zlib.crc32(b'"course-v1:edX+K0+Run"') % 4


def test_lane_names_round_trip():
    assert parse_lane("user-login") == Lane("user-login") and Lane("user-login").name == "user-login"
    assert (
        parse_lane("user-login#3/4") == Lane("user-login", 4, 3) and Lane("user-login", 4, 3).name == "user-login#3/4"
    )


def test_a_split_topic_has_one_lane_per_index_in_use_and_a_relay_drains_each_in_key_order(settings):
    settings.EVENT_BUS_OUTBOX_TOPIC_LANES = {TOPIC: 4}
    write_events(TOPIC, 60, keys=12)
    write_events("plain-topic", 5)
    rows = OutboxEvent.objects.filter(topic=TOPIC)
    indexes = set(rows.values_list("lane_index", flat=True))

    assert set(rows.values_list("lane_count", flat=True)) == {4} and len(indexes) > 1
    assert store.pending_lanes("default") == ["plain-topic", *[f"{TOPIC}#{i}/4" for i in sorted(indexes)]]
    assert {lane: count for lane, (count, _) in lane_backlog("default", store.pending_lanes("default")).items()} == {
        Lane(TOPIC, 4, i).name: rows.filter(lane_index=i).count() for i in indexes
    } | {"plain-topic": 5}
    assert [s.lane for s in lane_statuses("default")] == ["plain-topic", *[f"{TOPIC}#{i}/4" for i in sorted(indexes)]]

    sink = RecordingSink()
    relay(sink).run()
    assert sorted(row_id for _, row_id, _ in sink.published) == sorted(OutboxEvent.objects.values_list("id", flat=True))
    assert_each_key_in_id_order(sink.published)
    key_lanes = defaultdict(set)
    for lane, _, key in sink.published:
        key_lanes[parse_lane(lane).topic, key].add(lane)
    assert all(len(lanes) == 1 for lanes in key_lanes.values())


def test_a_relay_given_one_lane_drains_only_that_lane(settings):
    settings.EVENT_BUS_OUTBOX_TOPIC_LANES = {TOPIC: 2}
    write_events(TOPIC, 40, keys=8)
    [first, second] = store.pending_lanes("default")

    sink = RecordingSink()
    relay(sink, lanes=[second]).run()
    assert {lane for lane, _, _ in sink.published} == {second}
    assert store.pending_lanes("default") == [first]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_changing_the_number_of_lanes_while_writers_disagree_never_reorders_a_key(settings, seed):
    """
    A rolling deploy: for a while writers with 1, 2 and 4 lanes interleave. Relays serve the lanes
    in a random order, a batch at a time; each key's rows still go out in id order.
    """
    rng = random.Random(seed)
    for _ in range(30):
        settings.EVENT_BUS_OUTBOX_TOPIC_LANES = {TOPIC: rng.choice([1, 2, 4])}
        write_events(TOPIC, rng.randint(1, 4), keys=6)
    assert set(OutboxEvent.objects.values_list("lane_count", flat=True)) == {1, 2, 4}

    sink = RecordingSink()
    relays = {}
    while lanes := store.pending_lanes("default"):
        lane = rng.choice(lanes)
        worker = relays.setdefault(lane, relay(sink, lanes=[lane], batch_size=rng.randint(1, 3)))
        worker._serve_lanes()
    assert len(sink.published) == OutboxEvent.objects.count()
    assert_each_key_in_id_order(sink.published)


def test_a_lane_waits_only_for_lower_pending_rows_of_another_number_of_lanes(settings):
    settings.EVENT_BUS_OUTBOX_TOPIC_LANES = {TOPIC: 2}
    write_events(TOPIC, 6, keys=1)  # one key: every row in one lane
    settings.EVENT_BUS_OUTBOX_TOPIC_LANES = {TOPIC: 4}
    write_events(TOPIC, 6, keys=1)
    [old_lane, new_lane] = sorted(store.pending_lanes("default"), key=lambda name: parse_lane(name).count)
    old_ids = list(OutboxEvent.objects.filter(lane_count=2).order_by("id").values_list("id", flat=True))

    new_ids = list(OutboxEvent.objects.filter(lane_count=4).order_by("id").values_list("id", flat=True))

    assert store.layout_barrier("default", new_lane) == old_ids[0]
    assert store.layout_barrier("default", old_lane) == new_ids[0]  # above every row of the old lane
    assert store.pending_batch("default", new_lane, 100) == []
    assert [row.id for row in store.pending_batch("default", old_lane, 100)] == old_ids
