"""
What a batch costs the database: the statements the relay runs per batch in the steady state.

The latency of a busy lane is the length of the relay's loop, and on a loaded host every
statement in it is a wait for the scheduler as well as a round trip.
"""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.outbox.requeue import dead_rows, requeue
from edx_event_bus_outbox.relay import store
from edx_event_bus_outbox.relay.compiled import CompiledQuery
from edx_event_bus_outbox.relay.relay import Relay, RelayOptions
from tests.outbox_tools import write_events
from tests.relay.sinks import AcceptingSink

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_steady_state_batch_is_three_statements():
    """Renew the lease, claim (sizes and payloads in one), mark: no look for dead rows per batch."""
    write_events("lane-s", 30)
    relay = Relay(RelayOptions(lanes=["lane-s"], batch_size=10, listen=False), sink=AcceptingSink())
    relay._serve_lanes()  # takes the lease and looks for dead rows once

    with CaptureQueriesContext(connection) as statements:
        relay._serve_lanes()
    assert relay.sent_total == 20
    assert len(statements.captured_queries) == 3, [q["sql"][:80] for q in statements.captured_queries]


def test_rows_larger_than_their_share_of_the_byte_bound_cost_one_read_by_id():
    write_events("lane-s", 30)
    first_ten = sum(OutboxEvent.objects.order_by("id").values_list("payload_size", flat=True)[:10])
    with CaptureQueriesContext(connection) as statements:
        batch = store.pending_batch(
            "default", "lane-s", 10, max_bytes=first_ten - 1
        )  # the larger rows pass their share
    assert len(batch) == 9  # the tenth would pass the bound
    assert all(row.payload for row in batch)
    assert len(statements.captured_queries) == 2


def test_a_lane_with_a_dead_row_is_looked_at_every_batch_until_it_has_none():
    """Only the lease holder moves rows to dead, but a requeue by the operator takes them out at any time."""
    write_events("lane-s", 30, keys=1)
    first = OutboxEvent.objects.order_by("id").first()
    OutboxEvent.objects.filter(id=first.id).update(status=OutboxEvent.STATUS.dead)
    relay = Relay(RelayOptions(lanes=["lane-s"], batch_size=10, listen=False), sink=AcceptingSink())

    relay._serve_lanes()
    assert relay.sent_total == 0  # every later row of the key is held behind the dead one
    assert OutboxEvent.objects.filter(status=OutboxEvent.STATUS.held).count() == 29

    requeue(dead_rows(ids=[first.id]))
    while relay._serve_lanes():
        pass
    assert relay.sent_total == 30
    assert "lane-s" in relay.without_dead


def test_a_compiled_claim_returns_what_the_queryset_returns():
    """Converters and column order as Django's own iteration gives them: UUIDs, times, JSON, booleans."""
    write_events("lane-s", 12)
    OutboxEvent.objects.filter(id=OutboxEvent.objects.order_by("id").first().id).update(next_attempt_at=timezone.now())
    queryset = store.claim_query("default", "lane-s")[:10]
    fields = list(store.PendingRow._fields)
    compiled = CompiledQuery(store._claimable("default", "lane-s").values_list(*fields)[:10])

    assert [tuple(row) for row in compiled.run()] == list(queryset)
    assert [row.event_id for row in store.pending_batch("default", "lane-s", 10)] == [row[1] for row in queryset]


def test_a_busy_relay_serving_every_lane_looks_for_lanes_once_per_poll_interval():
    """Lane discovery is two statements (one seek per lane, and one past the last); a busy loop skips it."""
    write_events("lane-s", 30)
    relay = Relay(RelayOptions(lanes=None, batch_size=10, poll_interval=60.0, listen=False), sink=AcceptingSink())
    relay._serve_lanes()  # finds the lane, takes the lease, looks for dead rows once

    with CaptureQueriesContext(connection) as statements:
        relay._serve_lanes()
    assert relay.sent_total == 20
    assert len(statements.captured_queries) == 3, [q["sql"][:80] for q in statements.captured_queries]


def test_a_relay_looks_for_lanes_again_after_a_pass_without_work():
    """A new lane is found on the first pass after one that found nothing, however soon."""
    relay = Relay(RelayOptions(lanes=None, batch_size=10, poll_interval=60.0, listen=False), sink=AcceptingSink())
    write_events("lane-s", 10)
    relay._serve_lanes()
    assert not relay._serve_lanes()  # lane-s is empty now
    write_events("lane-t", 5)
    assert relay._serve_lanes()
    assert relay.sent_total == 15


def test_a_busy_relay_finds_a_new_lane_within_a_poll_interval():
    write_events("lane-s", 40)
    relay = Relay(RelayOptions(lanes=None, batch_size=10, poll_interval=0.2, listen=False), sink=AcceptingSink())
    relay._serve_lanes()
    write_events("lane-t", 5)
    relay._serve_lanes()
    assert not OutboxEvent.objects.filter(topic="lane-t", status=OutboxEvent.STATUS.sent).exists()
    time.sleep(0.25)
    relay._serve_lanes()
    assert OutboxEvent.objects.filter(topic="lane-t", status=OutboxEvent.STATUS.sent).count() == 5
