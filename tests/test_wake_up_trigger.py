"""
The outbox table's insert trigger wakes a relay only when one waits (ADR 24): a commit that
writes events sends a PostgreSQL NOTIFY, with its database-wide lock at commit, only while a
live relay has said, in its presence row, that it found nothing and may be asleep.
"""

import time
import uuid
from datetime import timedelta

import psycopg
import pytest
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.utils import timezone

from edx_event_bus_outbox.models import RelayPresence
from edx_event_bus_outbox.relay.relay import Relay, RelayOptions
from edx_event_bus_outbox.relay.wakeup import CHANNEL, listen_connection_params
from tests.outbox_tools import migrate_outbox, write_events
from tests.relay.sinks import AcceptingSink

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]


@pytest.fixture
def listener():
    with psycopg.connect(**_params(), autocommit=True) as listening:
        listening.execute(f"LISTEN {CHANNEL}")
        yield listening


def notified(listener) -> int:
    return sum(1 for _ in listener.notifies(timeout=0.5))


def presence(waiting, expires_in=30):
    return RelayPresence.objects.create(
        token=uuid.uuid4().hex,
        holder="test:1",
        expires_at=timezone.now() + timedelta(seconds=expires_in),
        waiting=waiting,
    )


@pytest.mark.parametrize(
    "relays, wakes",
    [
        ([], False),
        ([{"waiting": False}], False),
        ([{"waiting": True, "expires_in": -5}], False),  # a relay killed while it waited
        ([{"waiting": True}], True),
        ([{"waiting": False}, {"waiting": True}], True),
    ],
    ids=["no relay", "a busy relay", "a dead waiting relay", "a waiting relay", "one of two waits"],
)
def test_a_commit_notifies_only_while_a_live_relay_waits(listener, relays, wakes):
    for relay in relays:
        presence(**relay)
    write_events("wake-up", 3, per_transaction=3)
    assert notified(listener) == (1 if wakes else 0)  # one per transaction, however many rows


def test_a_rolled_back_send_notifies_nobody(listener):
    presence(waiting=True)
    with pytest.raises(RuntimeError), transaction.atomic():
        write_events("wake-up", 1)
        raise RuntimeError("roll back")
    assert notified(listener) == 0


def test_the_trigger_asks_at_commit_whether_a_relay_waits(listener):
    """A relay that starts waiting while a request's transaction is still open is woken by its commit."""
    waiting = presence(waiting=False)
    with transaction.atomic():
        write_events("wake-up", 1)
        with psycopg.connect(**_params(), autocommit=True) as relay_connection:
            relay_connection.execute(
                "UPDATE edx_event_bus_outbox_relay SET waiting = true WHERE token = %s", [waiting.token]
            )
    assert notified(listener) == 1


def _params():
    return listen_connection_params(DEFAULT_DB_ALIAS)


def test_a_relay_says_it_waits_after_a_pass_that_found_nothing_and_not_after_one_that_worked(listener):
    write_events("wake-up", 5)
    relay = Relay(RelayOptions(batch_size=10, poll_interval=0.05, listen=True), sink=AcceptingSink())

    def next_pass():
        time.sleep(0.06)  # past the poll interval: the pass looks for lanes, and so announces itself, first
        relay._serve_lanes()
        return RelayPresence.objects.get(token=relay.token).waiting

    try:
        assert next_pass() is True  # starting: it may find nothing; it sent the five rows
        assert next_pass() is False  # it had work: commits need not wake it; it finds nothing
        write_events("wake-up", 1)
        assert notified(listener) == 0
        assert next_pass() is True  # it found nothing: commits wake it; it sends the row
        write_events("wake-up", 1)
        assert notified(listener) == 1
    finally:
        relay._shutdown()


def test_a_relay_that_cannot_listen_never_asks_to_be_woken(listener):
    relay = Relay(RelayOptions(batch_size=10, poll_interval=0.05, listen=False), sink=AcceptingSink())
    try:
        relay._serve_lanes()
        assert RelayPresence.objects.get(token=relay.token).waiting is False
        write_events("wake-up", 1)
        assert notified(listener) == 0
    finally:
        relay._shutdown()


def test_migration_0012_reversed_wakes_on_every_insert_again(listener):
    try:
        migrate_outbox("0011_created_not_indexed")
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO edx_event_bus_outbox_relay (token, holder, expires_at) VALUES ('old', '', now())"
            )
        write_events("wake-up", 1)
        assert notified(listener) == 1
    finally:
        migrate_outbox()
    write_events("wake-up", 1)
    assert notified(listener) == 0
