"""Pieces that need no broker: options, the retry policy, offset bookkeeping, receiver names."""

import pytest

from edx_event_bus_outbox import KafkaEventConsumer
from edx_event_bus_outbox.consumer.dead_letter import DeadLetterProducer
from edx_event_bus_outbox.consumer.dispatch import RetryPolicy, receiver_name
from edx_event_bus_outbox.consumer.errors import ConsumerConfigurationError
from edx_event_bus_outbox.consumer.offsets import OffsetTracker
from edx_event_bus_outbox.exceptions import OutboxConfigurationError, OwnedPropertyError


def test_unknown_extra_options_are_refused_not_ignored():
    with pytest.raises(ConsumerConfigurationError, match="offset_tme"):
        KafkaEventConsumer(topic="t", group_id="g", offset_tme="2026-01-01")


@pytest.mark.parametrize("name", ["enable.auto.commit", "enable.auto.offset.store", "group.id"])
def test_kafka_config_may_not_take_over_offsets_or_the_group(settings, name):
    settings.EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG = {name: True}
    with pytest.raises(OwnedPropertyError, match=f"EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG may not set '{name}'"):
        KafkaEventConsumer(topic="t", group_id="g")


def test_a_missing_registry_url_fails_at_construction(settings):
    settings.EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL = None
    with pytest.raises(OutboxConfigurationError, match="EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL"):
        KafkaEventConsumer(topic="t", group_id="g")


def test_kafka_config_is_never_auto_commit(settings):
    settings.EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG = {"auto.offset.reset": "earliest"}
    config = KafkaEventConsumer(topic="t", group_id="g").kafka_config
    assert (config["enable.auto.commit"], config["enable.auto.offset.store"]) == (False, False)
    assert (config["group.id"], config["auto.offset.reset"]) == ("g", "earliest")


def test_retry_backoff_doubles_up_to_its_cap():
    policy = RetryPolicy(max_retries=5, backoff=0.5, backoff_max=3)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1, 2, 3, 3]


def test_retry_settings_have_documented_defaults(settings):
    del settings.EVENT_BUS_OUTBOX_CONSUMER_RETRY_BACKOFF_SECONDS  # set short by conftest
    assert RetryPolicy.from_settings() == RetryPolicy(3, 1.0, 30.0)


def test_dead_letter_timeout_has_a_documented_default_and_refuses_nonsense(settings):
    assert DeadLetterProducer("dead-letters", "g").timeout == 30.0
    settings.EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TIMEOUT_SECONDS = 2.5
    assert DeadLetterProducer("dead-letters", "g").timeout == 2.5
    settings.EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TIMEOUT_SECONDS = 0
    with pytest.raises(OutboxConfigurationError, match="EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TIMEOUT_SECONDS"):
        KafkaEventConsumer(topic="t", group_id="g")


class FakeMessage:
    def __init__(self, partition, offset, topic="t"):
        self._where = (topic, partition, offset)

    def topic(self):
        return self._where[0]

    def partition(self):
        return self._where[1]

    def offset(self):
        return self._where[2]


class FakeCommitter:
    def __init__(self, fail=False):
        self.commits, self.fail = [], fail

    def commit(self, offsets, asynchronous):
        from confluent_kafka import KafkaError, KafkaException

        assert asynchronous is False, "commits are synchronous"
        if self.fail:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT))
        self.commits.append(sorted((tp.partition, tp.offset) for tp in offsets))
        return offsets


def test_offsets_commit_the_next_offset_of_done_messages_when_due():
    now = [0.0]
    consumer = FakeCommitter()
    tracker = OffsetTracker(consumer, interval=1.0, clock=lambda: now[0])
    tracker.done(FakeMessage(0, 5))
    tracker.done(FakeMessage(1, 7))
    tracker.commit_if_due()
    assert consumer.commits == [], "not due yet"
    now[0] = 1.0
    tracker.done(FakeMessage(0, 6))
    tracker.commit_if_due()
    assert consumer.commits == [[(0, 7), (1, 8)]]
    assert tracker.pending == {}


def test_a_failed_commit_keeps_the_offsets_for_the_next_one():
    consumer = FakeCommitter(fail=True)
    tracker = OffsetTracker(consumer, interval=0)
    tracker.done(FakeMessage(0, 5))
    assert tracker.commit() is False
    assert tracker.pending == {("t", 0): 6}
    consumer.fail = False
    assert tracker.commit() is True
    assert consumer.commits == [[(0, 6)]]


def test_revoked_partitions_are_committed_and_lost_ones_forgotten():
    from confluent_kafka import TopicPartition

    consumer = FakeCommitter()
    tracker = OffsetTracker(consumer, interval=60)
    for partition in (0, 1, 2):
        tracker.done(FakeMessage(partition, 10))
    tracker.on_revoke(consumer, [TopicPartition("t", 0)])
    tracker.on_lost(consumer, [TopicPartition("t", 1)])
    assert consumer.commits == [[(0, 11)]]
    assert tracker.pending == {("t", 2): 11}


def test_receivers_are_named_by_module_and_qualname():
    def receiver():
        pass

    class Callable:
        def __call__(self):
            pass

    assert receiver_name(receiver) == f"{__name__}.test_receivers_are_named_by_module_and_qualname.<locals>.receiver"
    assert receiver_name(Callable()).endswith("test_receivers_are_named_by_module_and_qualname.<locals>.Callable")


# ---------------------------------------------------------------- headers are parsed totally

GOOD_HEADERS = [
    ("ce_specversion", b"1.0"),
    ("content-type", b"application/avro"),
    ("ce_datacontenttype", b"application/avro"),
    ("ce_type", b"org.openedx.learning.course.enrollment.created.v1"),
    ("ce_id", b"7d4f0b4e-2f0a-4c7e-9f43-1c2b3a4d5e6f"),
    ("ce_source", b"openedx/lms/web"),
    ("ce_time", b"2026-01-01T00:00:00.123456+00:00"),
    ("ce_minorversion", b"0"),
    ("sourcehost", b"h"),
    ("sourcelib", b"11.2.0"),
]


def _header_lists():
    from hypothesis import strategies as st

    names = st.sampled_from([name for name, _ in GOOD_HEADERS] + ["other", ""])
    values = st.one_of(
        st.none(),
        st.binary(max_size=40),
        st.sampled_from([v for _, v in GOOD_HEADERS]),
        st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )
    mutated = st.lists(st.tuples(st.integers(0, len(GOOD_HEADERS) - 1), values), max_size=3).map(
        lambda changes: [(name, dict(changes).get(i, value)) for i, (name, value) in enumerate(GOOD_HEADERS)]
    )
    return st.one_of(
        st.lists(st.tuples(names, values), max_size=14),
        mutated,
        st.tuples(mutated, st.lists(st.tuples(names, values), max_size=3)).map(lambda p: p[0] + p[1]),
    )


def test_metadata_from_headers_returns_metadata_or_raises_message_header_error_only():
    from hypothesis import given, settings

    from edx_event_bus_outbox.kafka.headers import MessageHeaderError, metadata_from_headers

    @settings(max_examples=400, deadline=None, database=None)
    @given(_header_lists())
    def check(headers):
        try:
            metadata = metadata_from_headers(headers)
        except MessageHeaderError as exc:
            assert exc.problem in {"missing", "duplicated", "null", "not_utf8", "empty", "invalid"}
            return
        # Accepted: then it is exactly what the headers say, in the wire format's forms.
        assert dict(headers)["ce_id"].decode().lower() == str(metadata.id)
        assert metadata.time.tzinfo is not None and metadata.time.utcoffset().total_seconds() == 0

    check()


def test_an_unreadable_header_name_is_a_bad_header_not_a_crash():
    from edx_event_bus_outbox.consumer import monitoring
    from edx_event_bus_outbox.consumer.dead_letter import original_headers
    from edx_event_bus_outbox.consumer.decoding import decode
    from edx_event_bus_outbox.consumer.errors import UnusableMessage

    class Unreadable(FakeMessage):
        def headers(self):
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")  # what a non-UTF-8 name raises

    msg = Unreadable(0, 3)
    with pytest.raises(UnusableMessage, match="bad_headers"):
        decode(msg)
    assert original_headers(msg) is None, "the dead letter leaves them out (dlt_omitted: headers)"
    assert "offset=3 event_id=None" in monitoring.describe(msg)


def test_one_messages_headers_are_read_from_confluent_kafka_once():
    from edx_event_bus_outbox.consumer import monitoring
    from edx_event_bus_outbox.kafka.headers import message_headers

    class Counting(FakeMessage):
        reads = 0

        def headers(self):
            Counting.reads += 1
            return [("ce_id", f"id-{self.offset()}".encode()), ("ce_type", b"org.openedx.test.v1")]

    first, second = Counting(0, 1), Counting(0, 2)
    monitoring.message_attributes({"full_topic": "t"}, first)
    message_headers(first)
    assert "event_id=id-1 event_type=org.openedx.test.v1" in monitoring.describe(first)
    assert Counting.reads == 1
    assert "event_id=id-2" in monitoring.describe(second), "another message is read afresh"
    assert message_headers(second) == [("ce_id", b"id-2"), ("ce_type", b"org.openedx.test.v1")]
    assert Counting.reads == 2
