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

from edx_event_bus_outbox import conf
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
    return full_topic(conf.relay_transactions_topic())


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


VICTIM = textwrap.dedent(
    """
    import os, signal, sys
    import django
    django.setup()
    from django.core.management import call_command
    from edx_event_bus_outbox.relay import exactly_once, store

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    class DiesBeforeCommitting:  # the batch and its marker are produced and acknowledged, not committed
        def __init__(self, producer):
            self.producer = producer

        def __getattr__(self, name):
            return die if name == "commit_transaction" else getattr(self.producer, name)

    moment, *options = sys.argv[1:]
    if moment == "after-commit":  # the Kafka transaction has committed; the rows are not marked yet
        mark_sent = store.mark_sent
        store.mark_sent = lambda alias, acked, *args: die() if acked else mark_sent(alias, acked, *args)
    else:
        build = exactly_once.kafka_client
        exactly_once.kafka_client = lambda *args, **kwargs: DiesBeforeCommitting(build(*args, **kwargs))
    call_command("run_outbox_relay", *options)
    """
)


def sigkill_a_relay_in_its_first_batch(topic, moment, exactly_once=True):
    """A relay process that publishes a first batch of 25 and is SIGKILLed at ``moment``."""
    import os
    import subprocess

    env = dict(
        os.environ,
        OUTBOX_TEST_DB_NAME=connection.settings_dict["NAME"],
        DJANGO_SETTINGS_MODULE="tests.settings",
    )
    victim = subprocess.run(
        [sys.executable, "-c", VICTIM, moment, "--lane", topic, "--batch-size", "25", "--lease-seconds", "3"]
        + ["--exactly-once" if exactly_once else "--no-exactly-once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert victim.returncode == -signals.SIGKILL, victim.stderr.decode()[-2000:]
    assert OutboxEvent.objects.filter(status=OutboxEvent.STATUS.pending).count() == 40  # nothing was marked


@pytest.mark.parametrize("exactly_once", [True, False], ids=["exactly-once", "at-least-once"])
def test_a_relay_sigkilled_between_the_kafka_commit_and_the_marking(kafka_stack, topic, exactly_once):
    """Exactly-once sends nothing twice; at-least-once (the relay before ADR 20) re-sends the batch."""
    written = write_events(topic, 40, keys=5)
    sigkill_a_relay_in_its_first_batch(topic, "after-commit", exactly_once)
    assert len(kafka_stack.read_all(topic, timeout=60)) == 25  # the first batch is out, none of it marked

    wait_out_the_lease(topic)
    drain(topic, exactly_once=exactly_once)

    verdict = check(kafka_stack.read_all(topic, timeout=60), [str(m.id) for m in written])
    assert verdict.ok(), verdict.summary()
    assert verdict.duplicates == (0 if exactly_once else 25), verdict.summary()
    assert OutboxEvent.objects.filter(status=OutboxEvent.STATUS.sent).count() == 40


def test_a_relay_sigkilled_before_the_kafka_commit_loses_nothing_and_read_committed_sees_no_duplicate(
    kafka_stack, topic
):
    """
    The dead relay's transaction is aborted when the next holder fences it: ``read_committed``
    readers never see its records, and the next holder publishes the batch. A ``read_uncommitted``
    reader sees the aborted copies too, before the committed ones (what ADR 20 documents).
    """
    written = write_events(topic, 40, keys=5)
    sigkill_a_relay_in_its_first_batch(topic, "before-commit")
    assert kafka_stack.read_all(topic, timeout=30) == []  # produced, acknowledged, never committed

    wait_out_the_lease(topic)
    drain(topic, exactly_once=True)

    ids = [str(m.id) for m in written]
    verdict = check(kafka_stack.read_all(topic, timeout=60), ids)
    assert verdict.ok() and verdict.duplicates == 0, verdict.summary()
    assert last_marker(topic) == list(OutboxEvent.objects.order_by("id").values_list("id", flat=True))  # one batch
    uncommitted = check(kafka_stack.read_all(topic, timeout=60, isolation_level="read_uncommitted"), ids)
    assert not uncommitted.lost and uncommitted.duplicates == 25, uncommitted.summary()


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
