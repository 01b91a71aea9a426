"""
The metrics module without the stack: the endpoint's answers, what /healthz means for the relay
and the consumer, and that the module depends on nothing above it. The endpoints of real relay
and consumer processes are scraped in tests/relay/test_relay_metrics.py and
tests/consumer/test_consumer_metrics.py.
"""

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, Counter

import edx_event_bus_outbox.metrics as metrics_package
from edx_event_bus_outbox.exceptions import MetricsServerError
from edx_event_bus_outbox.metrics import consumer as consumer_metrics
from edx_event_bus_outbox.metrics import relay as relay_metrics
from edx_event_bus_outbox.metrics.consumer import ConsumerMetrics
from edx_event_bus_outbox.metrics.relay import RelayMetrics
from edx_event_bus_outbox.metrics.server import Health, MetricsServer
from edx_event_bus_outbox.relay.relay import Relay, RelayOptions
from tests.metrics_tools import get, healthz, sample, scrape
from tests.relay.sinks import AcceptingSink
from tests.relay.test_relay_options import write
from tests.tcp_proxy import free_port


@pytest.fixture
def clock(monkeypatch):
    """``time.monotonic`` as the metrics modules see it, moved on by hand."""
    now = [1000.0]
    clock = SimpleNamespace(monotonic=lambda: now[0])
    for module in (relay_metrics, consumer_metrics):
        monkeypatch.setattr(module, "time", clock)
    return now


def test_the_endpoint_serves_the_registry_and_the_health_and_nothing_else():
    registry = CollectorRegistry()
    Counter("edx_event_bus_outbox_test_things", "Things.", registry=registry).inc(3)
    health = [Health(True, "ok: fine")]
    port = free_port()
    server = MetricsServer(registry, lambda: health[0], address="127.0.0.1", port=port)
    try:
        assert sample(scrape(port), "edx_event_bus_outbox_test_things_total") == 3
        assert healthz(port) == (200, "ok: fine\n")
        health[0] = Health(False, "unhealthy: because")
        assert healthz(port) == (503, "unhealthy: because\n")
        assert get(port, "/")[0] == 404
    finally:
        server.close()
    assert get(port, "/healthz")[0] is None


def test_an_address_that_does_not_resolve_is_a_clear_error():
    with pytest.raises(MetricsServerError, match=r"on no-such-host\.invalid:\d+ \(the address does not resolve"):
        MetricsServer(CollectorRegistry(), lambda: Health(True, ""), address="no-such-host.invalid", port=free_port())


def test_relay_health_is_the_heartbeat_two_leases_long(clock):
    metrics = RelayMetrics(lease_seconds=30, held=set())
    assert metrics.health() == Health(False, "starting: no pass over the lanes has finished yet (relay starting)")
    metrics.passed_healthily()
    clock[0] += 60
    assert metrics.health() == Health(True, "ok: last healthy pass 60.0s ago")
    metrics.state_changed("waiting for Kafka or the schema registry", "Kafka delivery failed: _MSG_TIMED_OUT")
    clock[0] += 1
    assert metrics.health() == Health(
        False,
        "unhealthy: no pass published every lane (or found nothing to publish) for 61s, more than 60s (two "
        "leases); relay waiting for Kafka or the schema registry: Kafka delivery failed: _MSG_TIMED_OUT",
    )


def test_consumer_health_is_a_poll_within_max_poll_interval(clock):
    metrics = ConsumerMetrics("a-topic", max_poll_interval_seconds=300)
    assert metrics.health() == Health(False, "starting: the consumer has not polled Kafka yet")
    metrics.polled(None)
    clock[0] += 300
    assert metrics.health().ok
    clock[0] += 1
    assert metrics.health() == Health(
        False,
        "unhealthy: the consumer has not polled Kafka for 301s, more than max.poll.interval.ms (300s), after "
        "which Kafka gives its partitions to another consumer",
    )


@pytest.mark.django_db(transaction=True)
def test_a_relay_counts_what_it_sent_and_the_leases_it_holds():
    write(4, lane="lane-a")
    relay = Relay(RelayOptions(lanes=["lane-a"], batch_size=3), sink=AcceptingSink())
    relay._serve_lanes()
    relay._serve_lanes()
    values = {name: value for (name, labels), value in _samples(relay.metrics.registry).items()}
    assert values["edx_event_bus_outbox_relay_events_sent_total"] == 4
    assert values["edx_event_bus_outbox_relay_batch_duration_seconds_count"] == 2
    assert values["edx_event_bus_outbox_relay_leases_held"] == 1
    relay._shutdown()


def _samples(registry):
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


def test_the_metrics_module_depends_on_nothing_above_it():
    """relay/ and consumer/ call it; it knows neither them, nor the database, nor Kafka."""
    found = set()
    for path in Path(metrics_package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                found.add("." * node.level + (node.module or ""))
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    assert sorted(found - {"logging", "socket", "threading", "time", "collections.abc", "typing"}) == [
        "..exceptions",
        ".server",
        "prometheus_client",
        "prometheus_client.exposition",
        "wsgiref.simple_server",
    ]
