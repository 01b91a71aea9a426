"""
Held rows (docs/decisions/0011-per-key-order-and-the-dead-state.rst) on the database alone:
the claim, requeue, status, retention. The end-to-end tests with Kafka are in
tests/relay/test_dead_order.py.
"""

import threading
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from edx_event_bus_outbox import conf
from edx_event_bus_outbox.exceptions import OutboxConfigurationError
from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.outbox.held import first_dead_by_key, is_behind, lock_dead, release_held
from edx_event_bus_outbox.relay.holding import ready_batch

pytestmark = pytest.mark.django_db(transaction=True)

STATUS = OutboxEvent.STATUS


def row(key, status=STATUS.pending, topic="lane-a"):
    now = timezone.now()
    return OutboxEvent.objects.create(
        event_id=uuid.uuid4(),
        event_type="org.openedx.test.v1",
        topic=topic,
        event_key_field="k",
        event_key=key,
        payload={},
        event_time=now,
        source="s",
        sourcehost="h",
        sourcelib="1.0.0",
        status=status,
    ).id


def statuses(*ids):
    found = dict(OutboxEvent.objects.filter(id__in=ids).values_list("id", "status"))
    return [found.get(row_id) for row_id in ids]


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_the_claim_holds_only_rows_behind_a_dead_row_of_their_key():
    older_k = row("K")  # older than the dead row: goes first, as it always would
    dead_k = row("K", STATUS.dead)
    later_k, other, later_k2 = row("K"), row("J"), row("K")
    other_lane = row("K", topic="lane-b")  # another topic: another key space

    assert [r.id for r in ready_batch("default", "lane-a", 10)] == [older_k, other]
    assert statuses(dead_k, later_k, later_k2, other_lane) == [STATUS.dead, STATUS.held, STATUS.held, STATUS.pending]
    assert [r.id for r in ready_batch("default", "lane-b", 10)] == [other_lane]


def test_a_batch_of_held_rows_only_does_not_end_the_claim():
    row("K", STATUS.dead)
    behind = [row("K") for _ in range(5)]
    other = row("J")
    assert [r.id for r in ready_batch("default", "lane-a", 2)] == [other]
    assert statuses(*behind) == [STATUS.held] * 5


def test_keys_are_compared_canonically():
    dead = row({"course": "c1", "run": "r1"}, STATUS.dead)
    first_dead = first_dead_by_key("default", "lane-a")
    assert is_behind(dead + 1, {"run": "r1", "course": "c1"}, first_dead)
    assert not is_behind(dead + 1, {"run": "r2", "course": "c1"}, first_dead)
    assert not is_behind(dead - 1, {"run": "r1", "course": "c1"}, first_dead)


def test_requeue_releases_the_rows_held_behind_the_requeued_row_only():
    dead_k, dead_j = row("K", STATUS.dead), row("J", STATUS.dead)
    held_k, held_j = row("K", STATUS.held), row("J", STATUS.held)
    assert "1 dead outbox row(s) requeued" in run("requeue_outbox", "--id", str(dead_k))
    assert statuses(dead_k, held_k, dead_j, held_j) == [STATUS.pending, STATUS.pending, STATUS.dead, STATUS.held]
    row_k = OutboxEvent.objects.get(id=dead_k)
    assert row_k.attempts == 0 and row_k.failing_since is None and row_k.next_attempt_at is None


def test_a_held_row_behind_two_dead_rows_of_its_key_waits_for_both():
    first, second = row("K", STATUS.dead), row("K", STATUS.dead)
    held = row("K", STATUS.held)
    run("requeue_outbox", "--id", str(second))
    assert statuses(first, second, held) == [STATUS.dead, STATUS.pending, STATUS.held]
    assert ready_batch("default", "lane-a", 10) == []  # the requeued row waits behind the first too
    assert statuses(second) == [STATUS.held]
    run("requeue_outbox", "--id", str(first))
    assert statuses(first, second, held) == [STATUS.pending] * 3


def test_requeue_by_topic_releases_held_rows_whose_dead_row_was_deleted():
    dead = row("K", STATUS.dead)
    held = row("K", STATUS.held)
    OutboxEvent.objects.filter(id=dead).delete()  # an operator gave up on the event, in the admin
    output = run("requeue_outbox", "--topic", "lane-a")
    assert "0 dead outbox row(s) requeued" in output and "1 held row(s) released" in output
    assert statuses(held) == [STATUS.pending]


def test_status_counts_held_rows_and_check_flags_them(settings):
    settings.EVENT_BUS_OUTBOX_STATUS_MAX_DEAD = 10  # a site that tolerates dead rows still hears of held ones
    row("K", STATUS.dead)
    row("K", STATUS.held)
    row("K", STATUS.held)
    assert '"held": 2' in run("outbox_status", "--json")
    with pytest.raises(CommandError, match="2 event\\(s\\) held behind dead events of their key"):
        run("outbox_status", "--check")


def test_purge_never_deletes_held_rows():
    held = row("K", STATUS.held)
    OutboxEvent.objects.filter(id=held).update(
        created=timezone.now() - timedelta(days=90), sent_at=timezone.now() - timedelta(days=90)
    )
    run("purge_outbox", "--days", "0")
    assert statuses(held) == [STATUS.held]


def test_the_retry_budget_defaults_to_a_quarter_hour_and_refuses_negative_values(settings):
    assert conf.relay_dead_after_seconds() == 900
    settings.EVENT_BUS_OUTBOX_RELAY_DEAD_AFTER_SECONDS = 0
    assert conf.relay_dead_after_seconds() == 0
    settings.EVENT_BUS_OUTBOX_RELAY_DEAD_AFTER_SECONDS = -1
    with pytest.raises(OutboxConfigurationError, match="EVENT_BUS_OUTBOX_RELAY_DEAD_AFTER_SECONDS"):
        conf.relay_dead_after_seconds()


@pytest.mark.server_database
def test_a_claim_during_a_requeue_waits_for_it_and_holds_nothing_the_requeue_released():
    """Without the claim's lock it would read the row as dead, then hold the rows the requeue freed, for good."""
    dead, held, met_later = row("K", STATUS.dead), row("K", STATUS.held), row("K")
    locked, finish, claimed = threading.Event(), threading.Event(), {}

    def requeue_slowly():
        try:
            with transaction.atomic():
                lock_dead("default", "lane-a")
                locked.set()
                finish.wait(30)
                OutboxEvent.objects.filter(id=dead).update(status=STATUS.pending)
                release_held("default", "lane-a")
        finally:
            connection.close()

    def claim():
        try:
            claimed["ids"] = [r.id for r in ready_batch("default", "lane-a", 10)]
        finally:
            connection.close()

    requeue = threading.Thread(target=requeue_slowly)
    requeue.start()
    assert locked.wait(30)
    claimer = threading.Thread(target=claim)
    claimer.start()
    claimer.join(1.0)
    assert claimer.is_alive(), "the claim must wait for the requeue's lock on the dead row"
    finish.set()
    requeue.join(30)
    claimer.join(30)
    assert claimed["ids"] == [dead, held, met_later]
    assert statuses(dead, held, met_later) == [STATUS.pending] * 3
