"""
At-least-once through consumer-group rebalances, with two live ``consume_events`` processes.

Consumer A starts alone on a six-partition topic; consumer B joins the same group while A is
busy and more events are produced (first rebalance: the partitions are split); A is then
stopped with SIGTERM mid-stream (second rebalance: B takes everything) and B finishes. Nothing
may be lost, replays must stay within what the rebalances can explain, each key's events must
first arrive in the order they were produced, and the group must end fully committed.

Both processes write to one journal (each line tagged ``A`` or ``B``), so its line order is
the one order in which the two processes received events.
"""

import collections
import uuid

import pytest
from opaque_keys.edx.keys import CourseKey

from tests.consumer.helpers import end_offsets, group_offsets, new_group, produce_events
from tests.consumer.subprocesses import journal_lines, start_consumer, stop, wait_for
from tests.factories import CourseDataFactory, enrollment_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka]

PARTITIONS = 6
KEYS = 30
BEFORE_B, AFTER_B = 300, 150
# Each message takes this long in the receiver, so that there is a backlog at both rebalances.
SLOW_SECONDS = "0.02"


def _events(count, start):
    """``count`` enrollment events whose keys (course keys) cycle through ``KEYS`` values."""
    return [
        enrollment_event(
            course=CourseDataFactory(course_key=CourseKey.from_string(f"course-v1:edX+Rebalance+K{(start + n) % KEYS}"))
        )
        for n in range(count)
    ]


def _receipts(journal, kind="begin"):
    """``[(event id, consumer tag)]`` in journal order: ``begin`` = received, ``end`` = processed."""
    return [tuple(line.split()[1:3]) for line in journal_lines(journal) if line.startswith(kind + " ")]


def _processed_by(journal, tag):
    return sum(1 for _, who in _receipts(journal, "end") if who == tag)


def _cleanup(*processes):
    for process in processes:
        if process is not None and process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


@pytest.mark.parametrize(
    "strategy, commit_interval",
    [
        pytest.param("range,roundrobin", 0, id="eager-commit-each-message"),
        pytest.param("range,roundrobin", 1.0, id="eager-commit-every-second"),
        # Incremental rebalancing: on_revoke is called with only the partitions that move.
        pytest.param("cooperative-sticky", 1.0, id="cooperative-commit-every-second"),
    ],
)
def test_two_consumers_through_two_rebalances_lose_nothing_and_commit_everything(
    kafka_stack, tmp_path, strategy, commit_interval
):
    topic = f"test-{uuid.uuid4().hex[:12]}"
    kafka_stack.create_topic(topic, partitions=PARTITIONS)
    journal, group = tmp_path / "journal", new_group()
    settings = {
        "EVENT_BUS_OUTBOX_CONSUMER_COMMIT_INTERVAL_SECONDS": commit_interval,
        # One INFO line per message would fill the (undrained) stdout pipe and block the consumer.
        "EVENT_BUS_KAFKA_AUDIT_LOGGING_ENABLED": False,
        "EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG": {
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
            "partition.assignment.strategy": strategy,
        },
    }
    events = _events(BEFORE_B, 0)
    produced = produce_events(topic, events)
    first = second = None
    try:
        first = start_consumer(
            topic, group, journal, settings=settings, OUTBOX_TEST_JOURNAL_TAG="A", OUTBOX_TEST_SLOW_SECONDS=SLOW_SECONDS
        )
        wait_for(lambda: _processed_by(journal, "A") >= 30, timeout=30, what="consumer A to process 30 events")

        # First rebalance: B joins while A has a backlog, and more events arrive meanwhile.
        second = start_consumer(
            topic, group, journal, settings=settings, OUTBOX_TEST_JOURNAL_TAG="B", OUTBOX_TEST_SLOW_SECONDS=SLOW_SECONDS
        )
        more = _events(AFTER_B, BEFORE_B)
        produced += produce_events(topic, more)
        events += more
        wait_for(lambda: _processed_by(journal, "B") >= 20, timeout=30, what="consumer B to process 20 events")
        a_before_b = _processed_by(journal, "A")
        # A is still working after B got its share (it was not simply finished before B joined).
        wait_for(lambda: _processed_by(journal, "A") > a_before_b + 5, timeout=30, what="A and B to work together")

        # Second rebalance: A leaves gracefully mid-stream; B takes over its partitions.
        unfinished_at_stop = len(produced) - len({event_id for event_id, _ in _receipts(journal, "end")})
        first_output = stop(first)
        ids = {str(m.id) for m in produced}
        wait_for(
            lambda: {event_id for event_id, _ in _receipts(journal, "end")} >= ids,
            timeout=60,
            what="consumer B to process every event",
        )
        second_output = stop(second)
    finally:
        _cleanup(first, second)

    assert first.returncode == 0, first_output
    assert second.returncode == 0, second_output
    assert unfinished_at_stop > 0, "A was stopped after everything was processed: no second rebalance mid-stream"

    received, processed = _receipts(journal, "begin"), _receipts(journal, "end")
    counts = collections.Counter(event_id for event_id, _ in processed)
    lost = ids - set(counts)
    assert not lost, f"{len(lost)} events never processed"
    assert set(counts) == ids, "processed an event that was not produced"
    assert sorted(event_id for event_id, _ in received) == sorted(event_id for event_id, _ in processed), (
        "an event was received but not finished"
    )

    by_consumer = collections.Counter(who for _, who in processed)
    assert by_consumer["A"] > 0 and by_consumer["B"] > 0, by_consumer
    duplicates = sum(counts.values()) - len(counts)
    print(
        f"\n[{strategy=} {commit_interval=}] events={len(ids)} processed={sum(counts.values())} "
        f"duplicates={duplicates} by_consumer={dict(by_consumer)} unfinished_at_stop={unfinished_at_stop}"
    )
    # Duplicate bound. Rebalance callbacks run inside poll(), between two messages, so no message is
    # half-processed when partitions are revoked, and on_revoke commits everything done on them first
    # (a graceful stop commits in _close as well): a clean handover replays nothing, and 0 is what runs
    # show. A message comes back only if it was done but its commit was refused (e.g. mid-rebalance)
    # when its partition moved; allow one such message per partition at each of the two rebalances,
    # 2 x 6 = 12 of 450. Without the on_revoke commit, the eager commit-every-second case replays up to
    # a second of work per rebalance (38 messages when tried) and fails here; in the cooperative case
    # the idle-time commit usually gets there before the revoke, so that case alone would not notice.
    assert duplicates <= 2 * PARTITIONS, f"{duplicates} duplicates, at most {2 * PARTITIONS} expected"

    # Per key, the first receipt of each event respects produce order.
    first_receipt = {}
    for position, (event_id, _) in enumerate(received):
        first_receipt.setdefault(event_id, position)
    by_key = collections.defaultdict(list)
    for (_, _, data), metadata in zip(events, produced, strict=False):
        by_key[str(data["enrollment"].course.course_key)].append(str(metadata.id))
    assert len(by_key) == KEYS
    for key, key_ids in by_key.items():
        positions = [first_receipt[event_id] for event_id in key_ids]
        assert positions == sorted(positions), f"events of key {key} first received out of produce order"

    # Nothing is left uncommitted: the group's committed offset of every partition is its end offset.
    ends = end_offsets(topic)
    assert len(ends) == PARTITIONS and all(end > 0 for end in ends.values()), ends
    assert sum(ends.values()) == len(ids)
    assert group_offsets(topic, group) == ends
