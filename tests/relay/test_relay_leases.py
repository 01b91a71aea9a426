"""
Leases and fencing under faults, against the real database, broker and registry: the
database's clock, writes fenced by the lease, batch deadlines, giving way, the heartbeat.
"""

import logging
import threading
import time
import uuid
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from confluent_kafka import KafkaError, KafkaException
from django.db import connection
from django.db.models.functions import Now
from django.test import override_settings
from django.utils import timezone

from edx_event_bus_outbox.models import OutboxEvent, RelayLease
from edx_event_bus_outbox.relay import leases
from edx_event_bus_outbox.relay.relay import Relay, RelayOptions
from edx_event_bus_outbox.relay.sink import KafkaSink
from tests.outbox_tools import drain, wait_for, write_events
from tests.relay.checker import check
from tests.relay.sinks import StealingSink
from tests.tcp_proxy import TcpProxy, free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka]

PENDING = OutboxEvent.STATUS.pending
LEASE = 3.0
FAST = {"lease_seconds": LEASE, "backoff": (0.1, 0.3)}


def relay_options(lane, **extra):
    return RelayOptions(lanes=[lane], poll_interval=0.1, **FAST, **extra)


def database_now(lane):
    return RelayLease.objects.filter(lane=lane).annotate(now=Now()).values_list("now", flat=True).get()


def run_in_thread(relay):
    def run():
        try:
            relay.run()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def holder_token(lane):
    return RelayLease.objects.filter(lane=lane).values_list("token", flat=True).first()


def ce_ids(written):
    return [str(m.id) for m in written]


# ---------------------------------------------------------------- the database's clock


@pytest.mark.parametrize(
    "skew", [timedelta(hours=-1), timedelta(hours=1)], ids=["host-clock-behind", "host-clock-ahead"]
)
def test_lease_times_come_from_the_database_clock_whatever_the_host_clock_says(monkeypatch, skew):
    lane = "skewed-lane"
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + skew)

    assert leases.try_acquire("default", lane, "skewed", LEASE)
    now, expires_at = database_now(lane), RelayLease.objects.get(lane=lane).expires_at
    assert now < expires_at <= now + timedelta(seconds=LEASE)
    # a host clock behind the database must not make a live lease look expired to others ...
    assert not leases.try_acquire("default", lane, "standby", LEASE)
    assert leases.renew("default", lane, "skewed", LEASE)
    # ... and a host clock ahead must not make it outlive its holder by an hour
    time.sleep(LEASE + 0.5)
    assert not leases.renew("default", lane, "skewed", LEASE)
    assert leases.try_acquire("default", lane, "standby", LEASE)


def test_a_relay_with_a_skewed_clock_drains_in_order_and_its_backoff_is_on_the_database_clock(topic, monkeypatch):
    """A failed event's retry time is written and compared on the database's clock, never the host's."""
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() - timedelta(hours=1))
    write_events(topic, 1)
    ghost = OutboxEvent.objects.get()
    ghost.pk, ghost.event_type, ghost.event_id = None, "org.openedx.removed.event.v1", uuid.uuid4()
    ghost.event_key = "a key of its own"  # so that no later row is held behind it once it is dead
    ghost.save()
    write_events(topic, 2)

    relay = drain(topic, max_attempts=2, dead_after_seconds=0, backoff=(0.2, 0.2), lease_seconds=LEASE)

    ghost.refresh_from_db()
    assert ghost.status == OutboxEvent.STATUS.dead and ghost.attempts == 2
    assert relay.sent_total == 3
    lease = RelayLease.objects.get(lane=topic)
    assert lease.last_sent_at is not None and abs(lease.last_sent_at - real_now()) < timedelta(minutes=5)


# ---------------------------------------------------------------- fencing


@pytest.mark.parametrize("delete_on_ack", [False, True], ids=["mark-sent", "delete-on-ack"])
def test_a_relay_that_lost_its_lease_mid_batch_marks_nothing(kafka_stack, topic, caplog, delete_on_ack):
    write_events(topic, 5)
    relay = Relay(relay_options(topic, delete_on_ack=delete_on_ack), sink=StealingSink(topic, KafkaSink(LEASE)))

    with caplog.at_level(logging.WARNING):
        assert relay.relay_once() == 0

    assert OutboxEvent.objects.filter(status=PENDING).count() == 5  # neither marked sent nor deleted
    assert len(kafka_stack.read_all(topic, expected=5)) == 5  # published: the new holder re-sends (at least once)
    assert RelayLease.objects.get(lane=topic).token == "thief"
    assert "lost its lease" in caplog.text and topic not in relay.held


def test_a_relay_that_lost_its_lease_records_no_failure(kafka_stack, topic):
    write_events(topic, 1)
    ghost = OutboxEvent.objects.get()
    ghost.event_type = "org.openedx.removed.event.v1"
    ghost.save()
    relay = Relay(
        relay_options(topic, max_attempts=1, dead_after_seconds=0), sink=StealingSink(topic, KafkaSink(LEASE))
    )

    relay.relay_once()

    ghost.refresh_from_db()
    assert (ghost.status, ghost.attempts, ghost.next_attempt_at) == (PENDING, 0, None)  # neither counted nor dead
    assert relay.dead_total == 0


# ---------------------------------------------------------------- batch deadline


def test_a_slow_registry_cannot_make_a_batch_outlive_its_lease(kafka_stack, topic, settings, caplog):
    registry = urlparse(kafka_stack.registry_url)
    proxy = TcpProxy(registry.netloc, delay=2 * LEASE).open()
    settings.EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL = registry._replace(netloc=proxy.address).geturl()
    written = write_events(topic, 3)
    relay = Relay(relay_options(topic))
    try:
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            relay.relay_once()
        took = time.monotonic() - started
        assert took < LEASE, f"the batch took {took:.1f}s with a {LEASE}s lease"
        assert list(OutboxEvent.objects.values_list("status", "attempts")) == [(PENDING, 0)] * 3  # left for later
        assert "deadline passed while encoding" in caplog.text

        proxy.delay = 0
        drain(topic, **FAST)
        verdict = check(kafka_stack.read_all(topic, expected=3), ce_ids(written))
        assert verdict.ok() and verdict.duplicates == 0, verdict.summary()
    finally:
        proxy.close()


# ---------------------------------------------------------------- giving way


def broken_sink(fault, proxy):
    broken = {
        "unreachable": {"EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS": proxy.address},
        "credentials-refused": {"EVENT_BUS_KAFKA_API_KEY": "relay", "EVENT_BUS_KAFKA_API_SECRET": "refused"},
    }
    with override_settings(**broken[fault]):
        return KafkaSink(LEASE)


@pytest.mark.parametrize("fault", ["unreachable", "credentials-refused"])
def test_a_relay_that_cannot_publish_gives_way_to_a_healthy_standby_and_recovers(kafka_stack, topic, caplog, fault):
    """
    The broken relay reaches the database but not Kafka (its bootstrap address is a closed port,
    or SASL against a PLAINTEXT listener). It must stop renewing, so the standby takes over.
    """
    written = write_events(topic, 20, keys=3)
    proxy = TcpProxy(kafka_stack.bootstrap_servers)  # closed until opened
    broken = Relay(relay_options(topic), sink=broken_sink(fault, proxy))
    standby = Relay(relay_options(topic))
    threads = []
    try:
        with caplog.at_level(logging.INFO):
            threads.append(run_in_thread(broken))
            assert wait_for(lambda: holder_token(topic) == broken.token, 30)
            threads.append(run_in_thread(standby))
            standby_started = time.monotonic()
            assert wait_for(lambda: holder_token(topic) == standby.token, 4 * LEASE), "the standby never took over"
            took_over_after = time.monotonic() - standby_started
            assert wait_for(lambda: OutboxEvent.objects.filter(status=PENDING).count() == 0, 30)
            assert took_over_after < 2 * LEASE + 2, f"takeover after {took_over_after:.1f}s with a {LEASE}s lease"
            assert "gave way on lane" in caplog.text
            verdict = check(kafka_stack.read_all(topic, expected=20), ce_ids(written))
            assert verdict.ok(), verdict.summary()
            if fault != "unreachable":
                return
            # Kafka becomes reachable again: the broken relay probes, and takes the lane when it is free.
            proxy.open()
            assert wait_for(lambda: "can reach Kafka again" in caplog.text, 30)
            standby.stop()
            threads[1].join(timeout=30)
            later = write_events(topic, 5, keys=3)
            assert wait_for(lambda: OutboxEvent.objects.filter(status=PENDING).count() == 0, 30)
            assert holder_token(topic) == broken.token
            verdict = check(kafka_stack.read_all(topic, expected=25), ce_ids(written + later))
            assert verdict.ok(), verdict.summary()
    finally:
        broken.stop()
        standby.stop()
        for thread in threads:
            thread.join(timeout=30)
        proxy.close()


class FatalProducer:
    """A producer in librdkafka's fatal state: every produce() raises a fatal KafkaError."""

    def produce(self, *_, **__):
        raise KafkaException(KafkaError(KafkaError._FATAL, "idempotent producer fenced (test)", fatal=True))

    def flush(self, *_, **__):
        return 0

    def poll(self, *_, **__):
        return 0


def test_a_fatal_producer_error_rebuilds_the_producer(kafka_stack, topic, caplog):
    written = write_events(topic, 4, keys=2)
    sink = KafkaSink(LEASE)
    sink.producer = FatalProducer()
    relay = Relay(relay_options(topic, until_empty=True), sink=sink)
    with caplog.at_level(logging.ERROR):
        worker = run_in_thread(relay)
        worker.join(timeout=60)
    assert not worker.is_alive(), "the relay kept the dead producer"
    assert not isinstance(sink.producer, FatalProducer)
    assert "fatal error" in caplog.text and "replacing it" in caplog.text
    verdict = check(kafka_stack.read_all(topic, expected=4), ce_ids(written))
    assert verdict.ok() and verdict.duplicates == 0, verdict.summary()


# ---------------------------------------------------------------- heartbeat


def test_a_relay_that_cannot_publish_lets_its_heartbeat_go_stale(topic, tmp_path):
    write_events(topic, 2)
    heartbeat = tmp_path / "alive"
    closed = TcpProxy(f"127.0.0.1:{free_port()}")
    relay = Relay(relay_options(topic, heartbeat_file=str(heartbeat)), sink=broken_sink("unreachable", closed))
    thread = run_in_thread(relay)
    try:
        assert wait_for(lambda: holder_token(topic) == relay.token, 30)
        time.sleep(LEASE)
        assert not heartbeat.exists(), "the heartbeat says healthy, but the relay has published nothing"
    finally:
        relay.stop()
        thread.join(timeout=30)


def test_a_healthy_standby_keeps_its_heartbeat_fresh(topic, tmp_path):
    write_events(topic, 2)
    RelayLease.objects.create(
        lane=topic, token="other", holder="elsewhere:1", expires_at=timezone.now() + timedelta(minutes=5)
    )
    heartbeat = tmp_path / "alive"
    relay = Relay(relay_options(topic, heartbeat_file=str(heartbeat)))
    thread = run_in_thread(relay)
    try:
        assert wait_for(heartbeat.exists, 10)
        time.sleep(1)
        assert time.time() - heartbeat.stat().st_mtime < 1
        assert OutboxEvent.objects.filter(status=PENDING).count() == 2  # it stood by
    finally:
        relay.stop()
        thread.join(timeout=30)
