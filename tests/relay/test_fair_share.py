"""
Relays share lanes fairly by themselves (ADR 21): each counts the running relays and holds
about its share of the lanes; a relay that starts takes about half, and one that stops or
dies hands its lanes back. In-process relays, stepped pass by pass, on the test database.
"""

import time

import pytest
from django.db import connection
from django.utils import timezone

from edx_event_bus_outbox.models import RelayPresence
from edx_event_bus_outbox.relay.relay import Relay, RelayOptions
from tests.outbox_tools import write_events
from tests.relay.sinks import AcceptingSink

pytestmark = pytest.mark.django_db(transaction=True)

TOPICS = [f"fair-{n}" for n in range(4)]


def relay(lease_seconds=30.0):
    options = RelayOptions(poll_interval=0.01, lease_seconds=lease_seconds, listen=False, batch_size=10)
    return Relay(options, sink=AcceptingSink())


def passes(*relays, count=3):
    for _ in range(count):
        for r in relays:
            r._serve_lanes()


@pytest.fixture
def four_lanes():
    for topic in TOPICS:
        write_events(topic, 200, keys=3)  # 20 batches each: every lane stays busy through a test


def test_a_relay_alone_holds_every_lane(four_lanes):
    first = relay()
    passes(first, count=1)
    assert first.held == set(TOPICS)


def test_a_second_relay_takes_half_the_lanes_and_gives_them_back_when_it_stops(four_lanes):
    first, second = relay(), relay()
    passes(first, count=1)
    passes(second, first, second)

    assert len(first.held) == len(second.held) == 2, (first.held, second.held)
    assert first.held.isdisjoint(second.held)

    second._shutdown()  # a clean stop: its leases and its presence go at once
    passes(first, count=2)
    assert first.held == set(TOPICS)


def test_three_relays_share_four_lanes_at_most_two_each_and_serve_every_lane(four_lanes):
    relays = [relay(), relay(), relay()]
    passes(*relays)

    held = [r.held for r in relays]
    assert sorted(len(h) for h in held) in ([1, 1, 2], [0, 2, 2]), held
    assert set().union(*held) == set(TOPICS)


def test_the_lanes_of_a_relay_that_died_go_to_the_others_once_its_lease_expires(four_lanes):
    first, second = relay(lease_seconds=1.0), relay(lease_seconds=1.0)
    passes(first, second)
    assert len(first.held) == len(second.held) == 2

    time.sleep(1.2)  # the second is SIGKILLed: no goodbye; its presence and leases expire
    passes(first, count=2)
    assert first.held == set(TOPICS)
    assert RelayPresence.objects.count() == 2  # the dead one's row stays, expired, for an hour


def test_a_stopped_relay_is_no_longer_counted():
    first, second = relay(), relay()
    passes(first, second, count=1)
    assert RelayPresence.objects.count() == 2
    second._shutdown()
    assert list(RelayPresence.objects.values_list("token", flat=True)) == [first.token]


@pytest.mark.server_database
def test_a_relay_of_the_previous_release_can_still_announce_itself():
    """During a rolling upgrade, relays that know no ``waiting`` column insert presence rows without it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO edx_event_bus_outbox_relay (token, holder, expires_at) VALUES (%s, %s, %s)",
            ["previous-release", "host:1", timezone.now()],
        )
    assert RelayPresence.objects.get(token="previous-release").waiting is False
