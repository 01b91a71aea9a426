"""
Hardening 9: deduplication identifies receivers exactly.

The inbox records receivers by an identity that is unique and the same in every process:
``module.qualname`` of a function that importing that name gives back, or the receiver's own
``outbox_receiver_id``. Receivers without one (lambdas, partials, closures, bound methods of
instances, callable objects) are refused when deduplication is on, before the consumer joins
its group; receivers sharing one are refused too.
"""

import functools
import uuid

import pytest
from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

from edx_event_bus_outbox.consumer.consumer import KafkaEventConsumer
from edx_event_bus_outbox.consumer.dispatch import receiver_id
from edx_event_bus_outbox.consumer.errors import ConsumerConfigurationError, ReceiverIdentityError
from edx_event_bus_outbox.models import ConsumerInboxEntry
from tests.consumer.helpers import connected, encoded, metadata_for, new_group, produce_raw, run_until
from tests.consumer.poison import CommittedWatch
from tests.factories import enrollment_event

pytestmark = pytest.mark.django_db(transaction=True)

CALLS = []


def module_receiver(**kwargs):
    CALLS.append("module_receiver")


def _decorate(function):
    @functools.wraps(function)
    def wrapper(**kwargs):
        return function(**kwargs)

    return wrapper


def undecorated(**kwargs):
    """Connected as it is, then wrapped under its own name (decorators applied after connecting)."""


connected_before_wrapping = undecorated
undecorated = _decorate(undecorated)  # noqa: F811  the module name now holds the wrapper


class Handlers:
    def __init__(self, name):
        self.name = name
        self.calls = []

    def handle(self, metadata, **kwargs):
        self.calls.append(str(metadata.id))

    @classmethod
    def on_class(cls, **kwargs):
        CALLS.append("on_class")

    @staticmethod
    def static(**kwargs):
        CALLS.append("static")


class CallableReceiver:
    def __call__(self, **kwargs):
        pass


class IdentifiedHandler:
    """One instance's ``handle``, with an identity of its own (openedx-events needs ``__name__`` on callables)."""

    def __init__(self, handlers):
        self.handlers = handlers
        self.outbox_receiver_id = f"{__name__}.Handlers[{handlers.name}-{uuid.uuid4().hex[:6]}].handle"
        self.__name__ = "handle"

    def __call__(self, **kwargs):
        self.handlers.handle(**kwargs)


def _closure():
    def inner(**kwargs):
        pass

    return inner


@pytest.mark.parametrize(
    "receiver, expected",
    [
        (module_receiver, f"{__name__}.module_receiver"),
        (Handlers.on_class, f"{__name__}.Handlers.on_class"),
        (Handlers.static, f"{__name__}.Handlers.static"),
        (connected_before_wrapping, f"{__name__}.undecorated"),
    ],
    ids=["function", "classmethod", "staticmethod", "wrapped-later"],
)
def test_importable_functions_are_identified_by_module_and_qualname(receiver, expected):
    assert receiver_id(receiver) == expected


@pytest.mark.parametrize(
    "receiver",
    [
        lambda **kwargs: None,
        functools.partial(module_receiver),
        Handlers("a").handle,
        CallableReceiver(),
        _closure(),
        print,
    ],
    ids=["lambda", "partial", "bound-method", "callable-object", "closure", "builtin"],
)
def test_receivers_whose_name_is_shared_have_no_identity(receiver):
    with pytest.raises(ReceiverIdentityError, match="outbox_receiver_id"):
        receiver_id(receiver)


def test_an_explicit_identity_wins_and_is_checked():
    two_partials = [functools.partial(module_receiver, n=n) for n in range(2)]
    for n, receiver in enumerate(two_partials):
        receiver.outbox_receiver_id = f"partial-{n}"
    assert [receiver_id(r) for r in two_partials] == ["partial-0", "partial-1"]
    bad = functools.partial(module_receiver)
    for value in ("", 7, "x" * 201):
        bad.outbox_receiver_id = value
        with pytest.raises(ReceiverIdentityError):
            receiver_id(bad)


def test_two_different_receivers_never_share_an_identity():
    # Every kind that used to collide under module.qualname: each gets its own or none.
    candidates = [
        lambda **k: None,
        lambda **k: None,
        functools.partial(module_receiver),
        functools.partial(module_receiver),
        Handlers("a").handle,
        Handlers("b").handle,
        _closure(),
        _closure(),
        CallableReceiver(),
        CallableReceiver(),
        module_receiver,
        Handlers.on_class,
    ]
    identities = []
    for receiver in candidates:
        try:
            identities.append(receiver_id(receiver))
        except ReceiverIdentityError:
            pass
    assert (
        sorted(identities)
        == sorted({*identities})
        == sorted([f"{__name__}.module_receiver", f"{__name__}.Handlers.on_class"])
    )


class Joined(Exception):
    """The consumer got as far as creating its Kafka consumer: it was not refused."""


def _joins(*args, **kwargs):
    raise Joined()


@pytest.mark.parametrize("deduplicate", [True, False])
def test_a_receiver_without_identity_is_refused_at_startup_only_when_deduplicating(settings, monkeypatch, deduplicate):
    settings.EVENT_BUS_OUTBOX_CONSUMER_DEDUPLICATE = deduplicate
    monkeypatch.setattr("edx_event_bus_outbox.consumer.consumer.Consumer", _joins)
    with connected(Handlers("x").handle, COURSE_ENROLLMENT_CREATED):
        consumer = KafkaEventConsumer(topic="t", group_id="g")
        if deduplicate:
            with pytest.raises(ConsumerConfigurationError, match=r"Handlers\.handle.*outbox_receiver_id"):
                consumer.consume_indefinitely()
        else:
            with pytest.raises(Joined):
                consumer.consume_indefinitely()


def test_two_receivers_with_one_identity_are_refused_at_startup(settings, monkeypatch):
    settings.EVENT_BUS_OUTBOX_CONSUMER_DEDUPLICATE = True
    monkeypatch.setattr("edx_event_bus_outbox.consumer.consumer.Consumer", _joins)
    first, second = functools.partial(module_receiver), functools.partial(module_receiver)
    first.outbox_receiver_id = second.outbox_receiver_id = "the-same"
    with connected(first, COURSE_ENROLLMENT_CREATED), connected(second, COURSE_ENROLLMENT_CREATED):
        with pytest.raises(ConsumerConfigurationError, match="the-same"):
            KafkaEventConsumer(topic="t", group_id="g").consume_indefinitely()


@pytest.mark.kafka
def test_bound_methods_of_two_instances_are_deduplicated_separately(topic, settings):
    settings.EVENT_BUS_OUTBOX_CONSUMER_DEDUPLICATE = True
    signal, key_field, data = enrollment_event()
    metadata = metadata_for(signal)
    message = encoded(signal, key_field, data, topic, metadata)
    produce_raw(topic, [{"key": message.key, "value": message.value, "headers": message.headers}] * 2, partition=0)
    first, second = Handlers("first"), Handlers("second")
    # Bound methods have no identity of their own; a callable per instance can carry one.
    receivers = [IdentifiedHandler(first), IdentifiedHandler(second)]
    group = new_group()
    with connected(receivers[0], COURSE_ENROLLMENT_CREATED), connected(receivers[1], COURSE_ENROLLMENT_CREATED):
        watch = CommittedWatch(topic, group, 2)  # the duplicate is read too
        run_until(topic, group, done=lambda: first.calls and second.calls and watch.at_end(), timeout=30)
    assert first.calls == [str(metadata.id)] and second.calls == [str(metadata.id)]
    rows = ConsumerInboxEntry.objects.filter(group_id=group)
    assert sorted(r.receiver for r in rows) == sorted(r.outbox_receiver_id for r in receivers)
