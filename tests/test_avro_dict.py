"""
``to_avro_dict`` returns what openedx-events' ``to_dict`` returns, for every signal openedx-events defines.

Hypothesis builds event data from each signal's own attrs classes: every leaf type they use
(opaque keys of several classes, including subclasses of the declared one, datetimes, UUIDs,
numbers, strings, lists and dicts), ``None`` where a field allows it and, now and then, a
value of the wrong type, which both serializers must treat alike. The JSON text is compared
too, so that key order is the same.
"""

import json
import logging
import typing
import uuid
from datetime import UTC, datetime

import attr
import pytest
from ccx_keys.locator import CCXLocator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opaque_keys.edx.keys import CourseKey, UsageKey
from opaque_keys.edx.locator import (
    LibraryCollectionLocator,
    LibraryContainerLocator,
    LibraryLocatorV2,
    LibraryUsageLocatorV2,
)
from openedx_events.tooling import OpenEdxPublicSignal, load_all_signals

from edx_event_bus_outbox.kafka import avro_dict
from edx_event_bus_outbox.kafka.avro_dict import NoneWithoutDefault, to_avro_dict
from edx_event_bus_outbox.kafka.schemas import signal_serializer
from tests.factories import CourseEnrollmentDataFactory, UserDataFactory, enrollment_event, sample_events

_Converter = avro_dict._Converter

load_all_signals()
SIGNALS = sorted(OpenEdxPublicSignal.all_events(), key=lambda signal: signal.event_type)

COURSE_KEYS = ["course-v1:edX+DemoX+Run1", "ccx-v1:edX+DemoX+Run1+ccx@1"]
KEYS = {
    CourseKey: COURSE_KEYS,
    UsageKey: ["block-v1:edX+DemoX+Run1+type@problem+block@p1", "lb:edX:lib1:problem:p1"],
    LibraryLocatorV2: ["lib:edX:lib1"],
    LibraryUsageLocatorV2: ["lb:edX:lib1:problem:p1"],
    LibraryCollectionLocator: ["lib-collection:edX:lib1:col1"],
    LibraryContainerLocator: ["lct:edX:lib1:unit:u1"],
    CCXLocator: ["ccx-v1:edX+DemoX+Run1+ccx@1"],
}
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
datetimes = st.datetimes(timezones=st.sampled_from([None, UTC]))
LEAVES = {
    bool: st.booleans(),
    int: st.integers(-(2**40), 2**40),
    float: finite_floats,
    str: st.text(max_size=20),
    datetime: datetimes,
    uuid.UUID: st.uuids(),
}
any_leaf = st.one_of(
    *LEAVES.values(), *(st.sampled_from(strings).map(cls.from_string) for cls, strings in KEYS.items())
)


def values_of(declared) -> st.SearchStrategy:
    """Values for a field declared as ``declared``; one in ten is of some other type."""
    return st.one_of(_typed(declared), any_leaf) if not attr.has(declared) else _typed(declared)


def _typed(declared):
    if attr.has(declared):
        return st.builds(declared, **{field.name: _field_values(field) for field in attr.fields(declared)})
    origin, args = typing.get_origin(declared), typing.get_args(declared)
    if origin is list:
        return st.lists(values_of(args[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(st.text(max_size=8), values_of(args[1]), max_size=3)
    if declared in KEYS:
        return st.sampled_from(KEYS[declared]).map(declared.from_string)
    if declared in LEAVES:
        return LEAVES[declared]
    # A key class not listed above (a new openedx-events type): its own subclass keys, if any.
    return st.sampled_from(COURSE_KEYS).map(CourseKey.from_string)


def _field_values(field):
    values = values_of(field.type)
    return st.one_of(st.none(), values) if field.default is None else values


@st.composite
def signal_and_data(draw):
    signal = draw(st.sampled_from(SIGNALS))
    return signal, {name: draw(values_of(declared)) for name, declared in signal.init_data.items()}


def _outcome(serialize):
    try:
        result = serialize()
    except Exception as exc:  # noqa: BLE001  openedx-events raises bare Exception
        return ("refused", type(exc).__name__ if not isinstance(exc, NoneWithoutDefault) else "Exception")
    return ("dict", json.dumps(result))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(signal_and_data())
def test_every_signals_data_becomes_the_dict_openedx_events_makes(signal_data):
    signal, data = signal_data
    theirs = _outcome(lambda: signal_serializer(signal).to_dict(data))
    ours = _outcome(lambda: to_avro_dict(signal, data))
    assert ours == theirs


@pytest.mark.parametrize("index", range(len(sample_events())))
def test_the_sample_events_become_the_dict_openedx_events_makes(index):
    signal, _, data = sample_events()[index]
    assert json.dumps(to_avro_dict(signal, data)) == json.dumps(signal_serializer(signal).to_dict(data))


def test_none_in_a_field_without_a_default_is_refused():
    signal, _, data = enrollment_event(user=UserDataFactory(pii=None))  # UserData.pii has no default
    to_avro_dict(signal, enrollment_event()[2])  # past the first-event comparison
    with pytest.raises(NoneWithoutDefault):
        to_avro_dict(signal, data)
    with pytest.raises(Exception, match="None cannot be handled"):
        signal_serializer(signal).to_dict(data)


def test_a_signal_serialized_differently_on_its_first_event_uses_openedx_events_to_dict(monkeypatch, caplog):
    signal, _, data = enrollment_event()
    upstream_calls = []

    def changed_upstream(event_data):
        upstream_calls.append(event_data)
        return {"changed": True}

    converter = _Converter(signal)
    converter.upstream = changed_upstream
    monkeypatch.setattr(avro_dict, "_converter", lambda _signal: converter)
    with caplog.at_level(logging.WARNING, logger=avro_dict.__name__):
        first = to_avro_dict(signal, data)
        second = to_avro_dict(signal, {"enrollment": CourseEnrollmentDataFactory()})
    assert first == second == {"changed": True}
    assert len(upstream_calls) == 2
    assert [record.message for record in caplog.records] == [
        f"Signal {signal.event_type}: this openedx-events serializes event data differently from the outbox's "
        "faster to_dict; the outbox uses openedx-events' own to_dict for this signal from now on (ADR 19)."
    ]


def test_a_signal_serialized_alike_on_its_first_event_is_not_compared_again(monkeypatch):
    signal, _, data = enrollment_event()
    converter = _Converter(signal)
    upstream_calls = []
    real_upstream = converter.upstream
    converter.upstream = lambda event_data: upstream_calls.append(1) or real_upstream(event_data)
    monkeypatch.setattr(avro_dict, "_converter", lambda _signal: converter)
    for _ in range(3):
        assert to_avro_dict(signal, data) == real_upstream(data)
    assert upstream_calls == [1]
