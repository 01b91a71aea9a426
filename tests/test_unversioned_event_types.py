"""
Event types without a ``.vN`` suffix (openedx-events 11.2's ``org.openedx.authz...`` events)
go the whole way like any other: ``send()`` writes them, the relay publishes them under their
own ``ce_type`` and registry subject, and the consumer turns them back into their signal.
"""

import pytest
from django.db import transaction
from openedx_events.authz.data import RoleAssignmentData
from openedx_events.authz.signals import ROLE_ASSIGNMENT_CREATED

from edx_event_bus_outbox.kafka.headers import header_values
from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.outbox import on_commit
from tests.consumer.helpers import Received, connected, new_group, run_until
from tests.outbox_tools import drain
from tests.test_producer import caller_writes, route

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka]

KEY_FIELD = "role_assignment.subject"


def role_assignment(subject, actor_id=None):
    """``actor_id`` is optional (a nullable Avro long): both shapes go through."""
    return {
        "role_assignment": RoleAssignmentData(
            operation="created",
            subject=subject,
            role="course_admin",
            scope="course-v1:edX+DemoX+Run",
            actor_id=actor_id,
        )
    }


@pytest.mark.parametrize("mode", ["outbox", "on-commit"])
def test_an_event_type_without_a_version_suffix_is_relayed_and_consumed(bus, topic, kafka_stack, settings, mode):
    settings.EVENT_BUS_KAFKA_CONSUMER_POLL_TIMEOUT = 0.1
    settings.EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG = {"auto.offset.reset": "earliest"}
    settings.EVENT_BUS_OUTBOX_TOPIC_MODES = {topic: mode}
    signal = ROLE_ASSIGNMENT_CREATED
    assert not signal.event_type.rsplit(".", 1)[-1].startswith("v"), "the event type has no version suffix"
    route(bus, signal, KEY_FIELD, topics=(topic,))
    sent = Received()
    with connected(sent, signal), transaction.atomic():
        caller_writes()
        signal.send_event(**role_assignment("user^ada", actor_id=7))
        signal.send_event(**role_assignment("user^grace"))

    if mode == "outbox":
        assert list(OutboxEvent.objects.values_list("event_type", flat=True)) == [signal.event_type] * 2
        drain(topic)
        assert set(OutboxEvent.objects.values_list("status", flat=True)) == {OutboxEvent.STATUS.sent}
    else:
        assert on_commit.flush(30) == 0
        assert OutboxEvent.objects.count() == 0
    messages = kafka_stack.read_all(topic, expected=2)
    assert [header_values(m.headers(), "ce_type") for m in messages] == [[signal.event_type]] * 2
    assert f"{topic}-{signal.event_type}.CloudEvent" in kafka_stack.registry().get_subjects()

    received = Received()
    with connected(received, signal):
        run_until(topic, new_group(), done=lambda: len(received.calls) >= 2)
    assert sorted(received.ids) == sorted(sent.ids)
    by_id = {str(kwargs["metadata"].id): kwargs for _, kwargs in sent.calls}
    for event_type, kwargs in received.calls:
        original = by_id[str(kwargs["metadata"].id)]
        assert event_type == signal.event_type and kwargs["from_event_bus"] is True
        assert kwargs["metadata"] == original["metadata"]
        assert kwargs["role_assignment"] == original["role_assignment"]
