"""
Exactly-once publication (ADR 20), against the real broker and database: one transaction per
batch, a marker naming its rows, the broker's fence, and no re-send after a crash between the
Kafka commit and the marking of the rows.
"""

import json
import signal as signals
import sys
import textwrap

import pytest
from django.db import connection

from edx_event_bus_outbox.kafka.config import full_topic, transactional_id
from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.relay import leases
from edx_event_bus_outbox.relay.exactly_once import ExactlyOnceKafkaSink
from edx_event_bus_outbox.relay.markers import MarkerReader, marked_ids, marker_value
from edx_event_bus_outbox.relay.relay import Relay, RelayOptions
from edx_event_bus_outbox.relay.sink import KafkaSink
from edx_event_bus_outbox.relay.store import pending_batch
from tests.outbox_tools import ROOT, drain, write_events
from tests.relay.checker import check

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka]


def marker_topic():
    return full_topic("outbox-relay-transactions")


def last_marker(topic):
    reader = MarkerReader(marker_topic(), 20)
    try:
        return reader.last_ids(transactional_id(topic).encode(), 20)
    finally:
        reader.close()


def test_marker_values_list_every_id_of_a_batch_with_gaps():
    ids = [3, 4, 5, 9, 11, 12]
    assert marked_ids(marker_value(ids)) == ids
    assert json.loads(marker_value(ids)) == {"ids": [[3, 5], [9, 9], [11, 12]]}


def test_each_batch_is_one_transaction_whose_marker_names_its_rows(kafka_stack, topic):
    written = write_events(topic, 30, keys=4)
    ids = list(OutboxEvent.objects.order_by("id").values_list("id", flat=True))
    drain(topic, batch_size=12, exactly_once=True)

    assert last_marker(topic) == ids[24:]  # batches of 12, 12 and 6
    verdict = check(kafka_stack.read_all(topic, timeout=60), [str(m.id) for m in written])
    assert verdict.ok() and verdict.duplicates == 0, verdict.summary()
    uncommitted = kafka_stack.read_all(topic, timeout=60, isolation_level="read_uncommitted")
    assert len(uncommitted) == 30  # nothing was aborted


def test_a_new_holder_fences_the_old_holders_producer_at_the_broker(kafka_stack, topic):
    write_events(topic, 5)
    old, new = ExactlyOnceKafkaSink(30), ExactlyOnceKafkaSink(30)
    try:
        old.prepare(topic)
        new.prepare(topic)  # the takeover: init_transactions with the same transactional.id
        rows = pending_batch("default", topic, 10)

        refused = old.publish(rows)
        accepted = new.publish(rows)
    finally:
        old.close()
        new.close()

    assert len(refused) == 1 and refused[0].error is not None, refused
    assert "FENCED" in str(refused[0].error).upper(), refused[0].error
    assert [d.row_id for d in accepted if d.error is None] == [row.id for row in rows]
    assert len(kafka_stack.read_all(topic, timeout=60)) == 5  # the fenced producer's copies never commit


def test_a_takeover_marks_what_the_last_transaction_published_instead_of_sending_it_again(kafka_stack, topic):
    written = write_events(topic, 8)
    first = ExactlyOnceKafkaSink(30)
    try:
        first.prepare(topic)
        assert all(d.error is None for d in first.publish(pending_batch("default", topic, 10)))
    finally:
        first.close()  # as if the relay died here: published and committed, not marked
    assert OutboxEvent.objects.filter(status=OutboxEvent.STATUS.pending).count() == 8

    drain(topic, exactly_once=True)

    assert OutboxEvent.objects.filter(status=OutboxEvent.STATUS.sent).count() == 8
    verdict = check(kafka_stack.read_all(topic, timeout=60), [str(m.id) for m in written])
    assert verdict.ok() and verdict.duplicates == 0, verdict.summary()


KILLED_AFTER_COMMIT = textwrap.dedent(
    """
    import os, signal, sys
    import django
    django.setup()
    from django.core.management import call_command
    from edx_event_bus_outbox.relay import store

    def die(*args, **kwargs):  # the Kafka transaction has committed; the rows are not marked yet
        os.kill(os.getpid(), signal.SIGKILL)

    store.mark_sent = die
    call_command("run_outbox_relay", *sys.argv[1:])
    """
)


@pytest.mark.parametrize("exactly_once", [True, False], ids=["exactly-once", "at-least-once"])
def test_a_relay_sigkilled_between_the_kafka_commit_and_the_marking(kafka_stack, topic, tmp_path, exactly_once):
    """Exactly-once sends nothing twice; at-least-once (the relay before ADR 20) re-sends the batch."""
    import os
    import subprocess

    written = write_events(topic, 40, keys=5)
    env = dict(
        os.environ,
        OUTBOX_TEST_DB_NAME=connection.settings_dict["NAME"],
        DJANGO_SETTINGS_MODULE="tests.settings",
    )
    victim = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_COMMIT, "--lane", topic, "--batch-size", "25", "--lease-seconds", "3"]
        + ["--exactly-once" if exactly_once else "--no-exactly-once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert victim.returncode == -signals.SIGKILL, victim.stderr.decode()[-2000:]
    assert len(kafka_stack.read_all(topic, timeout=60)) == 25  # the first batch is out, none of it marked
    assert OutboxEvent.objects.filter(status=OutboxEvent.STATUS.pending).count() == 40

    wait_out_the_lease(topic)
    drain(topic, exactly_once=exactly_once)

    verdict = check(kafka_stack.read_all(topic, timeout=60), [str(m.id) for m in written])
    assert verdict.ok(), verdict.summary()
    assert verdict.duplicates == (0 if exactly_once else 25), verdict.summary()
    assert OutboxEvent.objects.filter(status=OutboxEvent.STATUS.sent).count() == 40


def wait_out_the_lease(lane):
    token = leases.new_token()
    from tests.outbox_tools import wait_for

    assert wait_for(lambda: leases.try_acquire("default", lane, token, 1), 30)
    leases.release("default", lane, token)


def test_the_relay_builds_an_exactly_once_sink_by_default_and_a_plain_one_when_turned_off(settings, kafka_stack):
    assert isinstance(Relay(RelayOptions()).sink.sink("any"), ExactlyOnceKafkaSink)
    settings.EVENT_BUS_OUTBOX_RELAY_EXACTLY_ONCE = False
    sink = Relay(RelayOptions()).sink.sink("any")
    assert isinstance(sink, KafkaSink) and not isinstance(sink, ExactlyOnceKafkaSink)
