"""
``EVENT_BUS_OUTBOX_DATABASE`` set to an alias other than ``default``: the rows are written on
that alias, in the caller's transaction on that alias, and the relay drains them from there.
"""

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from openedx_events.data import EventsMetadata

from edx_event_bus_outbox import create_producer
from edx_event_bus_outbox.kafka.headers import header_values
from edx_event_bus_outbox.models import OutboxEvent, RelayLease
from edx_event_bus_outbox.relay.relay import Relay, RelayOptions
from tests.factories import enrollment_event
from tests.outbox_tools import drain
from tests.relay.sinks import AcceptingSink

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "other"])

OTHER = "other"


@pytest.fixture(autouse=True)
def outbox_on_other(settings):
    settings.EVENT_BUS_OUTBOX_DATABASE = OTHER


def send(topic="topic-a"):
    signal, key_field, data = enrollment_event()
    metadata = EventsMetadata(event_type=signal.event_type)
    create_producer().send(
        signal=signal, topic=topic, event_key_field=key_field, event_data=data, event_metadata=metadata
    )
    return str(metadata.id)


def outbox(alias):
    return OutboxEvent.objects.using(alias)


def callers(alias):
    return list(User.objects.using(alias).values_list("username", flat=True))


def test_the_row_is_written_on_the_configured_alias_and_commits_with_its_transaction():
    with transaction.atomic(using=OTHER):
        User.objects.db_manager(OTHER).create(username="caller")
        event_id = send()
        assert outbox(OTHER).count() == 1  # visible inside the caller's transaction on that alias
    assert [str(e) for e in outbox(OTHER).values_list("event_id", flat=True)] == [event_id]
    assert callers(OTHER) == ["caller"]
    assert outbox("default").count() == 0


def test_the_transaction_on_the_configured_alias_governs_the_row():
    with transaction.atomic(using=OTHER):
        User.objects.db_manager(OTHER).create(username="rolled-back")
        send()
        assert outbox(OTHER).count() == 1
        transaction.set_rollback(True, using=OTHER)
    assert outbox(OTHER).count() == 0 and callers(OTHER) == []

    with transaction.atomic(using="default"):  # a transaction on another alias has no say over the row
        with transaction.atomic(using=OTHER):
            kept = send()
        transaction.set_rollback(True, using="default")
    assert [str(e) for e in outbox(OTHER).values_list("event_id", flat=True)] == [kept]


def test_the_relay_drains_the_configured_alias():
    with transaction.atomic(using=OTHER):
        written = [send("lane-a") for _ in range(3)]
    sink = AcceptingSink()
    relay = Relay(RelayOptions(until_empty=True, poll_interval=0.05), sink=sink)
    assert relay.options.alias == OTHER
    relay.run()

    assert sink.published == written
    assert set(outbox(OTHER).values_list("status", flat=True)) == {OutboxEvent.STATUS.sent}
    assert list(RelayLease.objects.using(OTHER).values_list("lane", flat=True)) == ["lane-a"]
    assert not RelayLease.objects.using("default").exists()


@pytest.mark.kafka
def test_the_relay_publishes_from_the_configured_alias_to_kafka(kafka_stack, topic):
    with transaction.atomic(using=OTHER):
        written = [send(topic) for _ in range(3)]
    drain(topic)

    messages = sorted(kafka_stack.read_all(topic, expected=3), key=lambda m: (m.partition(), m.offset()))
    assert sorted(header_values(m.headers(), "ce_id")[0] for m in messages) == sorted(written)
    placed = {header_values(m.headers(), "ce_id")[0]: (m.partition(), m.offset()) for m in messages}
    rows = list(outbox(OTHER))
    assert len(rows) == 3
    for row in rows:
        assert row.status == OutboxEvent.STATUS.sent and (row.partition, row.offset) == placed[str(row.event_id)]
