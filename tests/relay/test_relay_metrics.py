"""
``run_outbox_relay --metrics-port``: the endpoints of a real relay process, scraped while it
publishes to the real broker, while it cannot, and after.
"""

import json
import signal as signals
import socket
import time
import uuid

import pytest

from edx_event_bus_outbox.models import OutboxEvent
from tests.metrics_tools import healthz, sample, scrape
from tests.outbox_tools import kill, relay_process, wait_for, write_events
from tests.tcp_proxy import TcpProxy, free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka]

LEASE = 3.0
SHORT_LEASE = ["--lease-seconds", str(LEASE), "--poll-interval", "0.2"]
SENT = "edx_event_bus_outbox_relay_events_sent_total"
FAILED = "edx_event_bus_outbox_relay_events_failed_total"
DEAD = "edx_event_bus_outbox_relay_events_dead_total"
PENDING = "edx_event_bus_outbox_relay_pending_events"
OLDEST = "edx_event_bus_outbox_relay_oldest_pending_age_seconds"
BATCHES = "edx_event_bus_outbox_relay_batch_duration_seconds_count"
LEASES = "edx_event_bus_outbox_relay_leases_held"


def metric(port, name, **labels):
    return sample(scrape(port), name, **labels)


def test_the_relay_serves_its_counters_gauges_and_a_healthz_that_follows_the_heartbeat(kafka_stack, topic, tmp_path):
    """
    Kafka is behind a closed port at first (the relay can reach the database, not the broker),
    then reachable. Nothing to publish is healthy; events it cannot publish make /healthz 503
    once the heartbeat file would be stale too; publishing again makes it 200.
    """
    proxy = TcpProxy(kafka_stack.bootstrap_servers)  # closed until opened
    port, heartbeat = free_port(), tmp_path / "alive"
    relay = relay_process(
        "--lane",
        topic,
        *SHORT_LEASE,
        "--heartbeat-file",
        str(heartbeat),
        "--metrics-port",
        str(port),
        log_path=tmp_path / "relay.log",
        env={"EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS": proxy.address},
    )
    try:
        # Nothing to publish: healthy, although Kafka is out of reach.
        assert wait_for(lambda: healthz(port)[0] == 200, 60), healthz(port)
        assert healthz(port)[1].startswith("ok: last healthy pass")
        samples = scrape(port)
        assert all(name.startswith("edx_event_bus_outbox_") for name, _ in samples), sorted(samples)
        assert sample(samples, LEASES) == 1
        assert sample(samples, PENDING, lane=topic) == 0

        # Events it cannot publish: 503 with the reason, when the heartbeat file is stale as well.
        write_events(topic, 7, keys=3)
        assert wait_for(lambda: healthz(port)[0] == 503, 30), healthz(port)
        reason = healthz(port)[1]
        assert reason.startswith("unhealthy: no pass published every lane") and "waiting for Kafka" in reason, reason
        assert time.time() - heartbeat.stat().st_mtime > 2 * LEASE - 0.5, "healthz and the heartbeat file disagree"
        assert wait_for(lambda: metric(port, PENDING, lane=topic) == 7, 15)
        samples = scrape(port)
        assert 0 < sample(samples, OLDEST, lane=topic) < 120
        assert sample(samples, FAILED, lane=topic, error="unavailable") >= 1
        assert sample(samples, SENT, lane=topic) in (None, 0)

        # Kafka answers again: the backlog goes out and /healthz is 200 again.
        proxy.open()
        assert wait_for(lambda: metric(port, SENT, lane=topic) == 7, 90), (tmp_path / "relay.log").read_text()
        assert wait_for(lambda: healthz(port)[0] == 200, 30), healthz(port)
        assert time.time() - heartbeat.stat().st_mtime < 2 * LEASE
        write_events(topic, 25, keys=3)
        assert wait_for(lambda: metric(port, SENT, lane=topic) == 32, 60)
        assert wait_for(lambda: metric(port, PENDING, lane=topic) == 0, 15)  # refreshed at most every 5 s
        samples = scrape(port)
        assert sample(samples, OLDEST, lane=topic) == 0
        assert sample(samples, BATCHES, lane=topic) >= 2
        assert sample(samples, DEAD, lane=topic) is None
        assert sample(samples, LEASES) == 1
    finally:
        assert kill(relay, signals.SIGTERM) == 0
        proxy.close()
    assert healthz(port)[0] is None, "the endpoint outlived the relay"
    assert OutboxEvent.objects.filter(status=OutboxEvent.STATUS.sent).count() == 32
    assert len(kafka_stack.read_all(topic, expected=32)) >= 32


def test_an_event_that_goes_dead_is_counted_failed_and_dead(kafka_stack, topic, tmp_path):
    write_events(topic, 2, keys=2)
    ghost = OutboxEvent.objects.first()
    ghost.pk, ghost.event_type, ghost.event_id = None, "org.openedx.removed.event.v1", uuid.uuid4()
    ghost.event_key = "a key of its own"  # so that no later row is held behind it
    ghost.save()
    write_events(topic, 3, keys=2)
    port = free_port()
    relay = relay_process(
        "--lane",
        topic,
        *SHORT_LEASE,
        "--metrics-port",
        str(port),
        log_path=tmp_path / "relay.log",
        env={
            "OUTBOX_TEST_SETTINGS": json.dumps(
                {"EVENT_BUS_OUTBOX_RELAY_MAX_ATTEMPTS": 1, "EVENT_BUS_OUTBOX_RELAY_DEAD_AFTER_SECONDS": 0}
            )
        },
    )
    try:
        assert wait_for(lambda: healthz(port)[0] is not None and metric(port, SENT, lane=topic) == 5, 60)
        samples = scrape(port)
        assert sample(samples, DEAD, lane=topic) == 1
        assert sample(samples, FAILED, lane=topic, error="permanent") == 1
        assert sample(samples, FAILED, lane=topic, error="unavailable") is None
        assert healthz(port)[0] == 200, "a dead event is the event's fault: the relay is healthy"
    finally:
        assert kill(relay, signals.SIGTERM) == 0
    ghost.refresh_from_db()
    assert ghost.status == OutboxEvent.STATUS.dead


def test_a_metrics_port_another_process_holds_stops_the_relay_at_startup(tmp_path):
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        relay = relay_process("--metrics-port", str(port), log_path=tmp_path / "relay.log")
        assert relay.wait(timeout=120) == 1
    output = (tmp_path / "relay.log").read_text()
    assert f"CommandError: Could not serve /metrics and /healthz on 0.0.0.0:{port} (Address already in use)" in output
    assert "give each process a port of its own" in output and "The relay did not start." in output
