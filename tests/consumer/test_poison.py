"""
Hardening 2, named cases: no message can stop or stall the consumer.

Each test puts damaged messages between good ones on the real broker, with the real registry,
and checks the rule of ``tests/consumer/poison.py``: the good ones are emitted exactly as sent,
the consumer stays alive, each damaged one is dead-lettered with its reason, and the group's
committed offset reaches the end of the topic. ``test_poison_property.py`` generates cases.
"""

import json
import logging

import pytest
from confluent_kafka.admin import NewTopic
from openedx_events.content_authoring.signals import XBLOCK_PUBLISHED
from openedx_events.learning.signals import COURSE_ENROLLMENT_CHANGED

from tests.consumer.helpers import encoded, metadata_for
from tests.consumer.poison import (
    CLOUDEVENTS_HEADERS,
    assert_committed_to_the_end,
    assert_emitted_exactly,
    duplicated_header,
    framed,
    good_message,
    header_dict_lenient,
    new_event_id,
    reasons,
    register_schema,
    run_through,
    with_header,
    without_header,
)
from tests.factories import XBlockDataFactory, enrollment_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka, pytest.mark.timeout(180)]

UUID = "7d4f0b4e-2f0a-4c7e-9f43-1c2b3a4d5e6f"

# header -> values of the wrong form (besides missing, empty, null, not UTF-8 and duplicated)
WRONG_FORMS = {
    "ce_specversion": [b"2.0", b"1"],
    "content-type": [b"application/json"],
    "ce_datacontenttype": [b"text/plain"],
    "ce_type": [b"org.openedx.no.such.event.v1"],
    "ce_id": [
        b"not-a-uuid",
        b"{" + UUID.encode() + b"}",
        b"urn:uuid:" + UUID.encode(),
        UUID.replace("-", "").encode(),
        b" " + UUID.encode(),
        UUID[:-1].encode(),
    ],
    "ce_source": [],
    "ce_time": [
        b"2026-01-01T00:00:00",
        b"2026-01-01T00:00:00+01:00",
        b"2026-01-01T00:00:00-05:00",
        b"yesterday",
        b"2026-01-01",
        b"2026-13-01T00:00:00+00:00",
        "2026-01-01T00:00:00+00:00".replace("0", "\u0660").encode(),
    ],
    "ce_minorversion": [b"-1", b" 7", b"7 ", b"+7", b"1_0", b"1.5", b"x", "\u0663".encode()],
    "sourcehost": [],
    "sourcelib": [b"9..1", b"-1.0", b"a.b", b" 9.1", b"9.1.", "\u0669.\u0661".encode()],
}


def _header_faults(name):
    """``(label, expected dlt_reason, headers -> damaged headers)`` for one header."""
    generic = "bad_headers"
    faults = [
        ("missing", "missing_event_type" if name == "ce_type" else generic, lambda h: without_header(h, name)),
        ("empty", generic, lambda h: with_header(h, name, b"")),
        ("null", generic, lambda h: with_header(h, name, None)),
        ("not UTF-8", generic, lambda h: with_header(h, name, b"\xff\xfe\x80")),
        ("duplicated", "multiple_event_types" if name == "ce_type" else generic, lambda h: duplicated_header(h, name)),
    ]
    for value in WRONG_FORMS[name]:
        reason = "unknown_event_type" if name == "ce_type" else generic
        faults.append((f"value {value!r}", reason, lambda h, value=value: with_header(h, name, value)))
    return faults


def _interleave(topic, damaged):
    """good, damaged 1, good, damaged 2, ..., good: returns (messages, goods)."""
    goods = [good_message(topic) for _ in range(len(damaged) + 1)]
    messages = [goods[0].message]
    for message, good in zip(damaged, goods[1:], strict=True):
        messages += [message, good.message]
    return messages, goods


@pytest.fixture
def dead_letter_topic(topic, kafka_stack, settings):
    name = f"{topic}-dlt"
    kafka_stack.create_topic(name)
    settings.EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TOPIC = name
    # A message that stalls the consumer (retried as if the registry were down) ends the run.
    settings.EVENT_BUS_KAFKA_CONSUMER_CONSECUTIVE_ERRORS_LIMIT = 1
    return name


def _check(topic, kafka_stack, dead_letter_topic, damaged, expected_reasons):
    messages, goods = _interleave(topic, damaged)
    outcome = run_through(
        topic, messages, dead_letter_topic=dead_letter_topic, kafka_stack=kafka_stack, expected_good=len(goods)
    )
    assert_emitted_exactly(outcome.received, goods)
    assert reasons(outcome.dead_letters) == expected_reasons
    assert [int(header_dict_lenient(d)["dlt_original_offset"]) for d in outcome.dead_letters] == list(
        range(1, 2 * len(damaged), 2)
    )
    assert_committed_to_the_end(topic, outcome.group)
    return outcome


@pytest.mark.parametrize("name", CLOUDEVENTS_HEADERS)
def test_a_damaged_cloudevents_header_is_dead_lettered_and_the_consumer_goes_on(
    topic, kafka_stack, dead_letter_topic, name
):
    faults = _header_faults(name)
    template = good_message(topic).message
    damaged = [{**template, "headers": damage(template["headers"])} for _, _, damage in faults]
    for message in damaged:  # each its own event, so that a wrongly emitted one would show
        if name != "ce_id":
            message["headers"] = with_header(message["headers"], "ce_id", new_event_id())
    outcome = _check(topic, kafka_stack, dead_letter_topic, damaged, [reason for _, reason, _ in faults])
    for (label, _, _), letter in zip(faults, outcome.dead_letters, strict=True):
        error = header_dict_lenient(letter)["dlt_error"]
        if not (name == "ce_type" and label.startswith("value")):  # an unknown type is named instead
            assert repr(name) in error, (label, error)


def test_a_value_framed_for_another_signal_is_dead_lettered(topic, kafka_stack, dead_letter_topic):
    template = good_message(topic).message
    same_shape = encoded(
        COURSE_ENROLLMENT_CHANGED,
        "enrollment.course.course_key",
        enrollment_event()[2],
        topic,
        metadata_for(COURSE_ENROLLMENT_CHANGED),
    )
    other_shape = encoded(
        XBLOCK_PUBLISHED,
        "xblock_info.usage_key",
        {"xblock_info": XBlockDataFactory()},
        topic,
        metadata_for(XBLOCK_PUBLISHED),
    )
    damaged = [
        {**template, "headers": with_header(template["headers"], "ce_id", new_event_id()), "value": value}
        for value in (same_shape.value, other_shape.value)
    ]
    _check(topic, kafka_stack, dead_letter_topic, damaged, ["wrong_schema", "wrong_schema"])


def test_a_value_framed_for_another_kind_of_schema_is_dead_lettered(topic, kafka_stack, dead_letter_topic):
    template = good_message(topic).message
    body = template["value"][5:]
    string_id = register_schema(f"{topic}-plain-string", json.dumps("string"))
    draft = "http://json-schema.org/draft-07/schema#"
    json_schema_id = register_schema(f"{topic}-json", json.dumps({"$schema": draft, "type": "object"}), "JSON")
    typeless_json_id = register_schema(f"{topic}-json-typeless", json.dumps({"$schema": draft, "title": "x"}), "JSON")
    empty_union_id = register_schema(f"{topic}-empty-union", "[]")
    protobuf_id = register_schema(f"{topic}-proto", 'syntax = "proto3";\nmessage M { string a = 1; }\n', "PROTOBUF")
    cases = [
        ("wrong_schema", framed(string_id, body)),
        ("wrong_schema", framed(json_schema_id, body)),
        ("wrong_schema", framed(typeless_json_id, body)),
        ("wrong_schema", framed(protobuf_id, body)),
        ("wrong_schema", framed(empty_union_id, body)),
        ("undecodable_value", template["value"] + b"\x02trailing"),  # a whole record, then more bytes
        ("undecodable_value", template["value"][:-1]),
        ("unknown_schema", framed(0, body)),
        ("unknown_schema", framed(2**32 - 1, body)),
        ("bad_framing", b"\x00\x00\x00\x00"),
    ]
    damaged = [
        {**template, "headers": with_header(template["headers"], "ce_id", new_event_id()), "value": value}
        for _, value in cases
    ]
    _check(topic, kafka_stack, dead_letter_topic, damaged, [reason for reason, _ in cases])


@pytest.mark.parametrize(
    "key",
    [b"\xff\xfe not Avro", b"\x00\x00\x00\x00\x07garbage", b"", None],
    ids=["bytes", "framed-garbage", "empty", "none"],
)
def test_a_key_the_consumer_cannot_read_never_matters(topic, kafka_stack, dead_letter_topic, key):
    # The consumer never decodes keys (receivers do not get them): a good value with a garbage
    # key is emitted, and a damaged message keeps its garbage key in the dead letter.
    goods = [good_message(topic, key=key) for _ in range(2)]
    damaged = {**goods[0].message, "headers": without_header(goods[0].message["headers"], "ce_id")}
    outcome = run_through(
        topic,
        [goods[0].message, damaged, goods[1].message],
        dead_letter_topic=dead_letter_topic,
        kafka_stack=kafka_stack,
        expected_good=2,
    )
    assert_emitted_exactly(outcome.received, goods)
    [letter] = outcome.dead_letters
    assert (letter.key() or None) == (key or None)
    assert_committed_to_the_end(topic, outcome.group)


def test_a_dead_letter_too_large_for_its_topic_is_cut_down_with_a_reason(topic, kafka_stack, settings):
    limit = 6000
    name = f"{topic}-small-dlt"
    kafka_stack.admin.create_topics(
        [NewTopic(name, num_partitions=1, replication_factor=1, config={"max.message.bytes": str(limit)})]
    )[name].result(30)
    settings.EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TOPIC = name
    settings.EVENT_BUS_KAFKA_CONSUMER_CONSECUTIVE_ERRORS_LIMIT = 1
    template = good_message(topic).message
    headers = without_header(template["headers"], "ce_id")  # unusable: no event id
    size = len(template["key"]) + len(template["value"]) + sum(len(k) + len(v) for k, v in headers)
    # The record and batch framing take about 70 bytes; the dlt_* headers take more than 300.
    padding = limit - size - 200
    damaged = [
        # fits the topic as it is, not once the dlt_* headers are added: the value is left out
        {**template, "headers": headers, "value": template["value"] + b"x" * padding},
        # a huge header: the original headers are left out too
        {**template, "headers": headers + [("padding", b"p" * limit)]},
        # a huge key: it is left out too
        {**template, "headers": headers, "key": b"k" * limit},
    ]
    outcome = _check(topic, kafka_stack, name, damaged, ["bad_headers"] * 3)
    first, second, third = (header_dict_lenient(letter) for letter in outcome.dead_letters)
    assert outcome.dead_letters[0].value() is None and first["dlt_omitted"] == "value"
    assert outcome.dead_letters[0].key() == template["key"]
    assert first["ce_type"] == "org.openedx.learning.course.enrollment.created.v1", "original headers kept"
    assert second["dlt_omitted"] == "value,key,headers" and "padding" not in second
    assert third["dlt_omitted"] == "value,key,headers"
    for letter, original in zip((first, second, third), damaged, strict=True):
        assert int(letter["dlt_original_value_bytes"]) == len(original["value"])
        assert letter["dlt_reason"] == "bad_headers" and "ce_id" in letter["dlt_error"]


def test_without_a_dead_letter_topic_damaged_messages_are_skipped_with_their_reason(topic, settings, caplog):
    settings.EVENT_BUS_KAFKA_CONSUMER_CONSECUTIVE_ERRORS_LIMIT = 1
    template = good_message(topic).message
    damaged = [
        {**template, "headers": with_header(template["headers"], "ce_id", None)},
        {**template, "headers": with_header(template["headers"], "ce_time", b"2026-01-01T00:00:00")},
        {**template, "headers": with_header(template["headers"], "ce_type", None)},
    ]
    messages, goods = _interleave(topic, damaged)
    caplog.set_level(logging.INFO)
    outcome = run_through(topic, messages, expected_good=len(goods))
    assert_emitted_exactly(outcome.received, goods)
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Message skipped")]
    assert len(skipped) == 3 and all("(bad_headers;" in line for line in skipped), skipped
    assert [f"offset={offset} " in line for offset, line in zip((1, 3, 5), skipped, strict=True)] == [True] * 3
    assert_committed_to_the_end(topic, outcome.group)
