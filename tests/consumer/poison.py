"""
Shared by the "no message can stop the consumer" tests: build good and damaged messages, run a
consumer through them on the real broker, and check the rule that every case must meet.

The rule: the good messages around a damaged one are emitted exactly as sent and in order, the
consumer stays alive (it returns only because the test stops it), every damaged message is
dead-lettered (or skipped) with a reason, and the group's committed offset reaches the end.
"""

import json
import time
import urllib.request
import uuid
from typing import NamedTuple

from django.conf import settings as django_settings
from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

from tests.consumer.helpers import (
    Received,
    connected,
    encoded,
    end_offsets,
    group_offsets,
    header_dict,
    metadata_for,
    new_group,
    produce_raw,
    run_until,
)
from tests.factories import enrollment_event

# Every header of the wire format; the consumer requires each exactly once.
CLOUDEVENTS_HEADERS = (
    "ce_specversion",
    "content-type",
    "ce_datacontenttype",
    "ce_type",
    "ce_id",
    "ce_source",
    "ce_time",
    "ce_minorversion",
    "sourcehost",
    "sourcelib",
)


class Good(NamedTuple):
    message: dict
    metadata: object
    data: dict


KEEP = object()


def good_message(topic, key=KEEP) -> Good:
    signal, key_field, data = enrollment_event()
    metadata = metadata_for(signal)
    message = encoded(signal, key_field, data, topic, metadata)
    return Good(
        {"key": message.key if key is KEEP else key, "value": message.value, "headers": message.headers}, metadata, data
    )


def with_header(headers, name, value):
    """``headers`` with every ``name`` header's value replaced (``value`` may be None or any bytes)."""
    return [(key, value if key == name else old) for key, old in headers]


def without_header(headers, name):
    return [(key, value) for key, value in headers if key != name]


def duplicated_header(headers, name):
    return headers + [(key, value) for key, value in headers if key == name]


def register_schema(subject, schema: str, schema_type="AVRO") -> int:
    """Register any schema (Avro, JSON, Protobuf) directly through the registry's REST API."""
    body = {"schema": schema} if schema_type == "AVRO" else {"schema": schema, "schemaType": schema_type}
    request = urllib.request.Request(
        f"{django_settings.EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL}/subjects/{subject}/versions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["id"]


def framed(schema_id: int, body: bytes) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + body


class Outcome(NamedTuple):
    received: Received
    dead_letters: list
    group: str


def run_through(
    topic, messages, *, dead_letter_topic=None, kafka_stack=None, expected_good=None, until_end=False, timeout=40.0
):
    """
    Produce ``messages`` (dicts) to partition 0 of a topic that had none and run one consumer
    until it has emitted ``expected_good`` events -- and with ``until_end``, until the group's
    committed offset is the end of the topic -- then stop it. A consumer that raises fails the
    test right here, with its exception; one that stalls fails the outcome's assertions.
    """
    produce_raw(topic, messages, partition=0)
    received, group = Received(), new_group()
    committed = CommittedWatch(topic, group, len(messages)) if until_end else None
    with connected(received, COURSE_ENROLLMENT_CREATED):
        run_until(
            topic,
            group,
            timeout=timeout,
            done=lambda: len(received.calls) >= expected_good and (committed is None or committed.at_end()),
        )
    dead = kafka_stack.read_all(dead_letter_topic) if dead_letter_topic else []
    return Outcome(received, dead, group)


class CommittedWatch:
    """Whether ``group`` has committed partition 0 up to ``end``; asks the broker at most twice a second."""

    def __init__(self, topic, group, end):
        self.topic, self.group, self.end = topic, group, end
        self._last_asked = 0.0

    def at_end(self) -> bool:
        if time.monotonic() - self._last_asked < 0.5:
            return False
        self._last_asked = time.monotonic()
        return group_offsets(self.topic, self.group).get(0, -1) >= self.end


def assert_emitted_exactly(received, goods):
    """The good events, in order, each with the metadata and data it was sent with."""
    assert [str(kwargs["metadata"].id) for _, kwargs in received.calls] == [str(g.metadata.id) for g in goods]
    for (_, kwargs), good in zip(received.calls, goods, strict=True):
        assert kwargs["metadata"] == good.metadata
        assert {name: kwargs[name] for name in good.data} == good.data


def assert_committed_to_the_end(topic, group):
    committed, ends = group_offsets(topic, group), end_offsets(topic)
    for partition, end in ends.items():
        assert committed[partition] == end or (end == 0 and committed[partition] < 0), (partition, committed, end)


def reasons(dead_letters):
    return [header_dict_lenient(letter)["dlt_reason"] for letter in dead_letters]


def header_dict_lenient(letter):
    """Like ``header_dict``, for dead letters whose original headers may be null or not UTF-8."""
    return {
        name: value.decode("utf-8", "replace") if value is not None else None for name, value in letter.headers() or []
    }


def new_event_id() -> bytes:
    return str(uuid.uuid4()).encode()


__all__ = [
    "CLOUDEVENTS_HEADERS",
    "Good",
    "good_message",
    "with_header",
    "without_header",
    "duplicated_header",
    "register_schema",
    "framed",
    "run_through",
    "assert_emitted_exactly",
    "assert_committed_to_the_end",
    "reasons",
    "header_dict_lenient",
    "header_dict",
    "new_event_id",
]
