"""The on-commit mode, against the real broker and registry."""
import pytest
from django.db import transaction

from edx_event_bus_outbox.kafka.headers import header_values
from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.outbox import on_commit
from tests.factories import enrollment_event
from tests.test_producer import Boom, bus, emit, route  # noqa: F401  (bus is a fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka]


def test_on_commit_publishes_after_commit_and_never_for_a_rollback(bus, topic, kafka_stack):
    signal, key_field, rolled_back = enrollment_event()
    _, _, committed = enrollment_event()
    route(bus, signal, key_field, topics=(topic,), mode="on-commit")
    ids = []
    signal.connect(lambda **kw: ids.append(str(kw["metadata"].id)), weak=False, dispatch_uid="ids")
    try:
        with pytest.raises(Boom):
            with transaction.atomic():
                emit(signal, rolled_back)
                raise Boom()
        with transaction.atomic():
            emit(signal, committed)
            assert on_commit.flush(0) == 0  # nothing handed to Kafka before commit
    finally:
        signal.disconnect(dispatch_uid="ids")
    assert on_commit.flush(30) == 0

    messages = kafka_stack.read_all(topic)
    assert [header_values(m.headers(), "ce_id") for m in messages] == [[ids[1]]]
    assert OutboxEvent.objects.count() == 0
