"""
``replay_outbox`` against the real broker and registry: a replayed message is the relay's
original byte for byte (key, value, headers with ``ce_id``), on the same partition, in the
same order; and a broker that stops answering mid-replay leaves a resume point without a gap.
"""

from collections import defaultdict

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from openedx_events.data import EventsMetadata

from edx_event_bus_outbox import create_producer
from edx_event_bus_outbox.kafka.headers import header_values
from edx_event_bus_outbox.models import OutboxEvent, RelayLease
from edx_event_bus_outbox.relay import replay as replay_module
from edx_event_bus_outbox.relay.sink import KafkaSink
from edx_event_bus_outbox.relay.topic_sinks import TopicSinks
from tests.factories import CourseDataFactory, CourseEnrollmentDataFactory, enrollment_event
from tests.outbox_tools import drain, manage, write_events
from tests.relay.checker import check
from tests.relay.test_relay_failures import _set_topic_config
from tests.tcp_proxy import TcpProxy, free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka]


def wire(message):
    """What a consumer receives of a message, less its offset and broker timestamp."""
    return message.partition(), message.key(), message.value(), message.headers()


def ce_id(message):
    return header_values(message.headers(), "ce_id")[0]


def by_partition(messages):
    """Messages per partition in offset order."""
    partitions = defaultdict(list)
    for message in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        partitions[message.partition()].append(message)
    return partitions


def replayed_after(originals, messages):
    """The messages after the originals, per partition: what the replay added."""
    ends = {partition: len(found) for partition, found in by_partition(originals).items()}
    return {partition: found[ends.get(partition, 0) :] for partition, found in by_partition(messages).items()}


def assert_replayed_exactly(originals, messages, selected_ids):
    """The replay added each selected event once, identical to its original, in the originals' order."""
    added = replayed_after(originals, messages)
    original_by_id = {ce_id(m): m for m in originals}
    assert sorted(ce_id(m) for found in added.values() for m in found) == sorted(selected_ids)
    for partition, found in added.items():
        assert [wire(m) for m in found] == [wire(original_by_id[ce_id(m)]) for m in found]
        in_original_order = [ce_id(m) for m in by_partition(originals)[partition] if ce_id(m) in set(selected_ids)]
        assert [ce_id(m) for m in found] == in_original_order


def row_state():
    return list(OutboxEvent.objects.order_by("id").values_list())


def test_a_time_range_and_topic_are_replayed_byte_identical_and_in_order(kafka_stack, topic):
    other = f"{topic}-other"
    kafka_stack.create_topic(other, partitions=1)
    before = write_events(topic, 12, keys=4)
    since = timezone.now()
    inside = write_events(topic, 30, keys=4)
    write_events(other, 8)  # in the range, another topic
    until = timezone.now()
    write_events(topic, 10, keys=4)
    drain()
    originals = kafka_stack.read_all(topic, expected=52)
    assert len(originals) == 52
    sent = row_state()
    write_events(topic, 3, keys=4)  # pending, in no range: left to the relay
    pending = row_state()[len(sent) :]
    RelayLease.objects.filter(lane=topic).update(token="relay-elsewhere", expires_at=until)
    leases = list(RelayLease.objects.order_by("lane").values_list())

    result = manage(
        "replay_outbox",
        "--since",
        since.isoformat(),
        "--until",
        until.isoformat(),
        "--topic",
        topic,
        "--batch-size",
        "7",
    )

    assert result.returncode == 0, result.stderr
    assert "Replayed 30 event(s)" in result.stdout and "replayed 30/30 events (100%)" in result.stderr
    messages = kafka_stack.read_all(topic, expected=82, timeout=10)
    assert len(messages) == 82
    assert_replayed_exactly(originals, messages, [str(m.id) for m in inside])
    assert len(kafka_stack.read_all(other, timeout=5)) == 8  # the other topic got nothing
    assert row_state() == sent + pending  # no row marked, claimed or moved; pending ones still pending
    assert list(RelayLease.objects.order_by("lane").values_list()) == leases
    assert {str(m.id) for m in before}.isdisjoint(ce_id(m) for m in messages[52:])


def test_dry_run_publishes_nothing(kafka_stack, topic):
    write_events(topic, 5)
    drain(topic)
    result = manage("replay_outbox", "--all", "--topic", topic, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would replay 5 sent event(s)" in result.stdout
    assert len(kafka_stack.read_all(topic, timeout=5)) == 5


class BrokerGoesAway:
    """
    Stands in for ``TopicSinks``: the real sinks publish the first ``batches`` batches, then a
    real producer whose broker address refuses connections takes over, as when the broker goes away.
    """

    def __init__(self, batches):
        self.batches = batches
        closed = TcpProxy(f"127.0.0.1:{free_port()}")  # never opened
        with override_settings(EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS=closed.address):
            self.unreachable = KafkaSink(3)

    def __call__(self, lease_seconds):
        self.real = TopicSinks(lease_seconds)
        return self

    def sink(self, topic):
        return self

    def close(self):
        self.real.close()

    def publish(self, rows, deadline=None):
        self.batches -= 1
        return (self.real if self.batches >= 0 else self.unreachable).publish(rows, deadline)


def test_broker_unreachable_mid_replay_stops_with_a_resume_point_and_resuming_leaves_no_gap(
    kafka_stack, topic, settings, monkeypatch
):
    settings.EVENT_BUS_OUTBOX_RELAY_LEASE_SECONDS = 3  # so the sink gives up on a broker after 1 s
    written = write_events(topic, 40, keys=5)
    drain(topic)
    originals = kafka_stack.read_all(topic, expected=40)
    ids = list(OutboxEvent.objects.order_by("id").values_list("id", flat=True))
    monkeypatch.setattr(replay_module, "TopicSinks", BrokerGoesAway(batches=2))

    stopped = manage("replay_outbox", "--all", "--topic", topic, "--batch-size", "8")

    assert stopped.returncode == 1
    assert "Replay stopped after 16 of 40 events" in stopped.stderr, stopped.stderr
    assert "was not acknowledged" in stopped.stderr and f"--after-id {ids[15]}" in stopped.stderr
    assert len(kafka_stack.read_all(topic, expected=56, timeout=10)) == 56

    monkeypatch.undo()
    # The broker is back: give the resumed replay the default delivery timeout (10 s), not the
    # 1 s that made the first one give up, which a loaded machine's first produce can exceed.
    settings.EVENT_BUS_OUTBOX_RELAY_LEASE_SECONDS = 30
    resumed = manage("replay_outbox", "--all", "--topic", topic, "--batch-size", "8", "--after-id", str(ids[15]))
    assert resumed.returncode == 0, resumed.stderr
    assert "Replayed 24 event(s)" in resumed.stdout
    messages = kafka_stack.read_all(topic, expected=80, timeout=10)
    assert len(messages) == 80
    assert_replayed_exactly(originals, messages, [str(m.id) for m in written])  # all 40, once each, in order


def test_a_message_the_broker_refuses_stops_the_replay_before_it_and_resuming_goes_on_in_order(kafka_stack, topic):
    """
    The broker itself refuses one event mid-replay: the topic's max.message.bytes was lowered
    since. (It bounds a whole record batch, so the small events stay far below it.)
    """
    signal, key_field, _ = enrollment_event()
    written = write_events(topic, 10, keys=3)
    with transaction.atomic():
        big = EventsMetadata(event_type=signal.event_type)
        data = {"enrollment": CourseEnrollmentDataFactory(course=CourseDataFactory(display_name="x" * 200_000))}
        create_producer().send(
            signal=signal, topic=topic, event_key_field=key_field, event_data=data, event_metadata=big
        )
    written += [big] + write_events(topic, 10, keys=3)
    drain(topic)
    originals = kafka_stack.read_all(topic, expected=21)
    big_row = OutboxEvent.objects.get(event_id=big.id)
    _set_topic_config(kafka_stack, topic, "max.message.bytes", "100000")

    stopped = manage("replay_outbox", "--all", "--topic", topic, "--batch-size", "10")

    assert stopped.returncode == 1
    assert "Replay stopped after 10 of 21 events" in stopped.stderr and "MSG_SIZE_TOO_LARGE" in stopped.stderr
    assert f"event {big.id} (row {big_row.id}" in stopped.stderr and f"--after-id {big_row.id - 1}" in stopped.stderr
    _set_topic_config(kafka_stack, topic, "max.message.bytes", "1000000")
    resumed = manage("replay_outbox", "--all", "--topic", topic, "--after-id", str(big_row.id - 1))
    assert resumed.returncode == 0, resumed.stderr
    added = [m for found in replayed_after(originals, kafka_stack.read_all(topic, timeout=10)).values() for m in found]
    verdict = check(added, [str(m.id) for m in written])  # the rows after the refused one may go out twice
    assert verdict.ok(), verdict.summary()
