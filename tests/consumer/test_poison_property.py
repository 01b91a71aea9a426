"""
Hardening 2, generated cases: whatever a message carries, the consumer dead-letters it or emits
it, commits past it and goes on.

Hypothesis draws a list of messages per example -- good ones, and ones with damaged headers
(missing, empty, null, not UTF-8, duplicated, of the wrong form), values of another signal or
schema, random bytes, trailing bytes, and values too large for the dead-letter topic once the
``dlt_*`` headers are added -- each with a random key and random extra headers. They go to a
fresh topic on the real broker and one consumer runs through them. The rule of
``tests/consumer/poison.py`` must hold. Bounded (few examples, one topic and one consumer run
each) so that the suite stays quick.
"""

import uuid

import pytest
from confluent_kafka.admin import NewTopic
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openedx_events.content_authoring.signals import XBLOCK_PUBLISHED
from openedx_events.learning.signals import COURSE_ENROLLMENT_CHANGED

from edx_event_bus_outbox.kafka.framing import framed_schema_id
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
    run_through,
    with_header,
    without_header,
)
from tests.consumer.test_poison import WRONG_FORMS
from tests.factories import XBlockDataFactory, enrollment_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka, pytest.mark.timeout(600)]

DEAD_LETTER_LIMIT = 4000  # the dead-letter topic's max.message.bytes; the topic itself keeps 1 MB

not_utf8 = st.binary(min_size=1, max_size=12).filter(lambda b: not _decodes(b))
header_names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12).filter(
    lambda name: name not in CLOUDEVENTS_HEADERS
)
# Text that no header's form accepts: a leading "~" is in no UUID, time, number or version.
garbage = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30).map(lambda text: "~" + text)


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def header_damage():
    """``("header", name, how, value)``: every one makes the message unusable."""

    def for_header(name):
        forms = [
            st.just(("missing", None)),
            st.just(("empty", b"")),
            st.just(("null", None)),
            not_utf8.map(lambda b: ("value", b)),
            st.just(("duplicated", None)),
        ]
        if WRONG_FORMS[name]:
            forms.append(st.sampled_from(WRONG_FORMS[name]).map(lambda v: ("value", v)))
        if name not in ("ce_source", "sourcehost"):  # any non-empty text is a valid source or host
            forms.append(garbage.map(lambda text: ("value", text.encode())))
        return st.one_of(forms).map(lambda how: ("header", name, *how))

    return st.sampled_from(CLOUDEVENTS_HEADERS).flatmap(for_header)


value_damage = st.one_of(
    st.tuples(
        st.just("value"),
        st.sampled_from(["other_signal_same_shape", "other_signal", "key_schema", "truncated", "empty"]),
        st.none(),
    ),
    st.tuples(st.just("value"), st.just("trailing"), st.integers(1, 2 * DEAD_LETTER_LIMIT)),
    st.tuples(
        st.just("value"), st.just("random_framed"), st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=200))
    ),
    st.tuples(st.just("value"), st.just("random"), st.binary(max_size=300)),
)

message_plans = st.fixed_dictionaries(
    {
        "damage": st.lists(st.one_of(header_damage(), value_damage), max_size=2),
        "key": st.one_of(st.just("keep"), st.none(), st.binary(max_size=2 * DEAD_LETTER_LIMIT)),
        "extra_headers": st.lists(st.tuples(header_names, st.one_of(st.none(), st.binary(max_size=40))), max_size=3),
    }
)


class Materials:
    """The registry-backed values a plan refers to, made once per example."""

    def __init__(self, topic):
        self.topic = topic
        self.same_shape = encoded(
            COURSE_ENROLLMENT_CHANGED,
            "enrollment.course.course_key",
            enrollment_event()[2],
            topic,
            metadata_for(COURSE_ENROLLMENT_CHANGED),
        )
        self.other = encoded(
            XBLOCK_PUBLISHED,
            "xblock_info.usage_key",
            {"xblock_info": XBlockDataFactory()},
            topic,
            metadata_for(XBLOCK_PUBLISHED),
        )
        good = good_message(topic).message
        self.own_schema_id = framed_schema_id(good["value"])
        self.key_schema_id = framed_schema_id(good["key"])

    def damaged_value(self, value, how, arg):
        body = value[5:]
        if how == "other_signal_same_shape":
            return self.same_shape.value
        if how == "other_signal":
            return self.other.value
        if how == "key_schema":
            return framed(self.key_schema_id, body)
        if how == "truncated":
            return value[:-1]
        if how == "empty":
            return b""
        if how == "trailing":
            return value + b"\x01" * arg
        if how == "random_framed":
            schema_id, random_body = arg
            # The signal's own schema with random bytes could, however unlikely, be a valid value.
            return framed(schema_id if schema_id != self.own_schema_id else schema_id + 1, random_body)
        return b"\x01" + arg  # "random": never the magic byte, so never taken for framed Avro


def materialize(plan, materials):
    """``(message, good or None)`` for one plan."""
    good = good_message(materials.topic)
    message = dict(good.message)
    if plan["key"] != "keep":
        message["key"] = plan["key"]
    message["headers"] = message["headers"] + plan["extra_headers"]
    if not plan["damage"]:
        return message, good._replace(message=message)
    message["headers"] = with_header(message["headers"], "ce_id", new_event_id())  # never mistaken for a good one
    for damage in plan["damage"]:
        if damage[0] == "header":
            _, name, how, value = damage
            headers = message["headers"]
            message["headers"] = (
                without_header(headers, name)
                if how == "missing"
                else duplicated_header(headers, name)
                if how == "duplicated"
                else with_header(headers, name, value)
            )
        else:
            _, how, arg = damage
            message["value"] = materials.damaged_value(message["value"], how, arg)
    return message, None


@settings(
    max_examples=6,
    deadline=None,
    database=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(plans=st.lists(message_plans, min_size=1, max_size=14))
def test_no_generated_message_stops_the_consumer(kafka_stack, plans):
    topic = f"test-{uuid.uuid4().hex[:12]}"
    dead_letter_topic = f"{topic}-dlt"
    kafka_stack.create_topic(topic)
    kafka_stack.admin.create_topics(
        [
            NewTopic(
                dead_letter_topic,
                num_partitions=1,
                replication_factor=1,
                config={"max.message.bytes": str(DEAD_LETTER_LIMIT)},
            )
        ]
    )[dead_letter_topic].result(30)
    materials = Materials(topic)
    made = [materialize(plan, materials) for plan in plans]
    goods = [good for _, good in made if good is not None]
    bad_offsets = [offset for offset, (_, good) in enumerate(made) if good is None]

    with override_settings(
        EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TOPIC=dead_letter_topic,
        EVENT_BUS_KAFKA_CONSUMER_CONSECUTIVE_ERRORS_LIMIT=1,
    ):
        # Until the last good one is emitted and, for the damaged ones, until the topic's end.
        outcome = run_through(
            topic,
            [message for message, _ in made],
            dead_letter_topic=dead_letter_topic,
            kafka_stack=kafka_stack,
            expected_good=len(goods),
            until_end=True,
        )

    assert_emitted_exactly(outcome.received, goods)
    letters = [header_dict_lenient(letter) for letter in outcome.dead_letters]
    assert [int(letter["dlt_original_offset"]) for letter in letters] == bad_offsets
    assert all(letter["dlt_reason"] and letter["dlt_error"] for letter in letters)
    assert_committed_to_the_end(topic, outcome.group)
