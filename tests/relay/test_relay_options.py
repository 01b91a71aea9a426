"""
The relay's settings reach its options (and so its behaviour), and ``run_outbox_relay``'s
options override them. ``EVENT_BUS_OUTBOX_RELAY_LISTEN = False`` means no LISTEN on PostgreSQL.
"""

import threading
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from openedx_events.data import EventsMetadata

from edx_event_bus_outbox import create_producer
from edx_event_bus_outbox.management.commands import run_outbox_relay
from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.relay.relay import Relay, RelayOptions
from edx_event_bus_outbox.relay.wakeup import (
    CHANNEL,
    PollingWaiter,
    PostgresNotifyWaiter,
)
from tests.factories import enrollment_event
from tests.relay.sinks import AcceptingSink

pytestmark = pytest.mark.django_db(transaction=True)

FIELDS = (
    "alias",
    "lanes",
    "batch_size",
    "poll_interval",
    "lease_seconds",
    "max_attempts",
    "backoff",
    "delete_on_ack",
    "listen",
    "heartbeat_file",
    "metrics_port",
    "until_empty",
)

SETTINGS = {
    "EVENT_BUS_OUTBOX_DATABASE": "other",
    "EVENT_BUS_OUTBOX_RELAY_LANES": ["lane-x", "lane-y"],
    "EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE": 77,
    "EVENT_BUS_OUTBOX_RELAY_POLL_INTERVAL": 4.5,
    "EVENT_BUS_OUTBOX_RELAY_LEASE_SECONDS": 12,
    "EVENT_BUS_OUTBOX_RELAY_MAX_ATTEMPTS": 9,
    "EVENT_BUS_OUTBOX_RELAY_BACKOFF_SECONDS": (1, 8),
    "EVENT_BUS_OUTBOX_DELETE_ON_ACK": True,
    "EVENT_BUS_OUTBOX_RELAY_LISTEN": False,
    "EVENT_BUS_OUTBOX_RELAY_HEARTBEAT_FILE": "/tmp/from-settings",
    "EVENT_BUS_OUTBOX_RELAY_METRICS_PORT": 9101,
}
FROM_SETTINGS = (
    "other",
    ["lane-x", "lane-y"],
    77,
    4.5,
    12.0,
    9,
    (1.0, 8.0),
    True,
    False,
    "/tmp/from-settings",
    9101,
    False,
)


def options_tuple(options):
    return tuple(getattr(options, name) for name in FIELDS)


def test_without_settings_the_options_are_the_documented_defaults():
    assert options_tuple(RelayOptions()) == (
        "default",
        None,
        500,
        1.0,
        30.0,
        5,
        (0.5, 60.0),
        False,
        True,
        None,
        None,
        False,
    )


def test_each_setting_flows_into_the_options(settings):
    for name, value in SETTINGS.items():
        setattr(settings, name, value)
    assert options_tuple(RelayOptions()) == FROM_SETTINGS


@pytest.fixture
def command_relays(monkeypatch):
    """The ``RelayOptions`` each ``run_outbox_relay`` call built; the relay itself does not run."""
    built = []

    class RecordingRelay:
        sent_total = dead_total = 0

        def __init__(self, options):
            built.append(options)

        def run(self):
            return 0

        def stop(self, *_):
            pass

    monkeypatch.setattr(run_outbox_relay, "Relay", RecordingRelay)
    monkeypatch.setattr(run_outbox_relay.signal, "signal", lambda *args: None)  # keep pytest's own handlers
    return built


def test_the_command_takes_the_settings_and_its_options_override_them(settings, command_relays, tmp_path):
    for name, value in SETTINGS.items():
        setattr(settings, name, value)
    call_command("run_outbox_relay", stdout=StringIO())
    call_command(
        "run_outbox_relay",
        "--lane",
        "a",
        "--lane",
        "b",
        "--batch-size",
        "5",
        "--poll-interval",
        "0.5",
        "--lease-seconds",
        "7",
        "--heartbeat-file",
        str(tmp_path / "alive"),
        "--metrics-port",
        "9102",
        "--until-empty",
        stdout=StringIO(),
    )

    plain, overridden = command_relays
    assert options_tuple(plain) == FROM_SETTINGS
    assert options_tuple(overridden) == (
        "other",
        ["a", "b"],
        5,
        0.5,
        7.0,
        9,
        (1.0, 8.0),
        True,
        False,
        str(tmp_path / "alive"),
        9102,
        True,
    )


def write(count, lane="lane-a"):
    signal, key_field, _ = enrollment_event()
    ids = []
    with transaction.atomic():
        for _ in range(count):
            data = enrollment_event()[2]
            metadata = EventsMetadata(event_type=signal.event_type)
            create_producer().send(
                signal=signal, topic=lane, event_key_field=key_field, event_data=data, event_metadata=metadata
            )
            ids.append(str(metadata.id))
    return ids


def test_the_batch_size_and_delete_on_ack_settings_change_what_the_relay_does(settings):
    settings.EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE = 3
    settings.EVENT_BUS_OUTBOX_DELETE_ON_ACK = True
    ids = write(5)
    sink = AcceptingSink()
    assert Relay(RelayOptions(), sink=sink).relay_once() == 3  # one batch of EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE
    assert sink.published == ids[:3]
    assert sorted(str(e) for e in OutboxEvent.objects.values_list("event_id", flat=True)) == sorted(ids[3:])


def listening_sessions():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = %s",
            [f"LISTEN {CHANNEL}"],
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres_only
@pytest.mark.parametrize("listen", [True, False])
def test_relay_listen_false_polls_without_a_listen_session(settings, listen):
    """Behind PgBouncer in transaction mode LISTEN does not work: with the setting off the relay never LISTENs."""
    settings.EVENT_BUS_OUTBOX_RELAY_LISTEN = listen
    sink = AcceptingSink()
    relay = Relay(RelayOptions(lanes=["lane-a"], poll_interval=0.5), sink=sink)
    assert isinstance(relay.waiter, PostgresNotifyWaiter if listen else PollingWaiter)

    def run():
        try:
            relay.run()
        finally:
            connections.close_all()  # this thread's connections, or the test database could not be dropped

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        time.sleep(2)  # idle: waiting, with LISTEN when it is on
        sessions = listening_sessions()
        ids = write(1)
        deadline = time.monotonic() + 20
        while sink.published != ids and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        relay.stop()
        worker.join(timeout=30)
    assert sessions == (1 if listen else 0)
    assert sink.published == ids, "the row committed while the relay was idle was relayed"
