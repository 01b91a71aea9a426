"""
The relay's metrics and health. ``relay/relay.py`` reports what happens; the endpoint reads it.

``/healthz`` means what the heartbeat file means: the relay's last pass over its lanes in which
every lane was published or had nothing to publish ended recently. "Recently" is two leases:
an idle relay passes at least every poll interval (never longer than a lease), and a relay that
cannot publish for one lease gives its lanes way (docs/operations.rst), so a relay still
failing a lease later, or wedged that long, answers 503.
"""

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .server import Health, MetricsServer

PREFIX = "edx_event_bus_outbox_relay_"
# A batch takes milliseconds when healthy and at most two thirds of the lease (30 s by default).
BATCH_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80)


class RelayMetrics:
    """One relay process's metrics, in a registry of its own; the endpoint runs between ``serve()`` and ``close()``."""

    def __init__(self, lease_seconds: float, held: set):
        """``held``: the relay's set of the lanes it holds, read at each scrape (it may have just cleared it)."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.healthy_within = 2 * lease_seconds
        self.last_healthy_pass = None  # time.monotonic() of the last pass that published or had nothing to publish
        self.state = "starting"
        self.server = None
        self.backlog_lanes = set()  # every lane the backlog gauges have shown: one that empties shows 0
        self.sent = Counter(
            PREFIX + "events_sent",
            "Events published to Kafka (acknowledged by the broker) and marked sent, per lane.",
            ["lane"],
            registry=self.registry,
        )
        self.failed = Counter(
            PREFIX + "events_failed",
            "Events a batch could not publish, per lane; error=unavailable (Kafka or the schema registry did "
            "not answer; retried, never counted against the event) or permanent (an error of the event's own, "
            "counted against its attempts).",
            ["lane", "error"],
            registry=self.registry,
        )
        self.dead = Counter(
            PREFIX + "events_dead",
            "Events moved to the dead state after exhausting their retries, per lane.",
            ["lane"],
            registry=self.registry,
        )
        self.pending = Gauge(
            PREFIX + "pending_events",
            "Events waiting to be published, per lane (refreshed every few seconds).",
            ["lane"],
            registry=self.registry,
        )
        self.oldest_pending_age = Gauge(
            PREFIX + "oldest_pending_age_seconds",
            "Age of the lane's first pending event, 0 when none is pending (refreshed every few seconds).",
            ["lane"],
            registry=self.registry,
        )
        self.batch_duration = Histogram(
            PREFIX + "batch_duration_seconds",
            "Time to publish one batch and record the outcome, per lane.",
            ["lane"],
            buckets=BATCH_SECONDS_BUCKETS,
            registry=self.registry,
        )
        leases_held = Gauge(PREFIX + "leases_held", "Lanes whose lease this relay holds.", registry=self.registry)
        leases_held.set_function(lambda: len(held))

    # ------------------------------------------------------------------ the endpoint

    def serve(self, address: str, port: int):
        """Start ``/metrics`` and ``/healthz``; ``MetricsServerError`` if the port cannot be had."""
        self.server = MetricsServer(self.registry, self.health, address=address, port=port)

    @property
    def serving(self) -> bool:
        return self.server is not None

    def close(self):
        if self.server is not None:
            self.server.close()
            self.server = None

    def health(self) -> Health:
        if self.last_healthy_pass is None:
            return Health(False, f"starting: no pass over the lanes has finished yet (relay {self.state})")
        age = time.monotonic() - self.last_healthy_pass
        if age <= self.healthy_within:
            return Health(True, f"ok: last healthy pass {age:.1f}s ago")
        return Health(
            False,
            f"unhealthy: no pass published every lane (or found nothing to publish) for {age:.0f}s, "
            f"more than {self.healthy_within:g}s (two leases); relay {self.state}",
        )

    # ------------------------------------------------------------------ what the relay reports

    def passed_healthily(self):
        self.last_healthy_pass = time.monotonic()

    def state_changed(self, state, cause=None):
        self.state = f"{state}: {cause}" if cause else state

    def batch_done(self, lane, seconds, sent, failed_by_error):
        """``failed_by_error``: ``{"unavailable" or "permanent": number of events}``."""
        self.batch_duration.labels(lane).observe(seconds)
        self.sent.labels(lane).inc(sent)
        for error, count in failed_by_error.items():
            self.failed.labels(lane, error).inc(count)

    def moved_to_dead(self, lane):
        self.dead.labels(lane).inc()

    def backlog(self, lanes_backlog):
        """``{lane: (pending count, oldest age in seconds or None)}``; a lane seen before and absent now shows 0."""
        self.backlog_lanes |= set(lanes_backlog)
        for lane in self.backlog_lanes:
            count, age = lanes_backlog.get(lane, (0, None))
            self.pending.labels(lane).set(count)
            self.oldest_pending_age.labels(lane).set(age or 0)
