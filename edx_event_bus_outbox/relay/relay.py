"""
The relay loop: hold lane leases, move each lane's pending rows to Kafka (or Redis Streams) in id order,
record the outcome, and wait cheaply when there is nothing to do.

Guarantees and their reasons live in docs/decisions/0001-ordering-and-claiming.rst,
0002-leases-and-fencing.rst and 0003-retries-and-the-dead-state.rst.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.db import DatabaseError, connections
from edx_django_utils.monitoring import function_trace, set_custom_attribute

from .. import conf
from ..metrics.relay import RelayMetrics
from . import holding, leases, store
from .backlog import BacklogSampler
from .backoff import backoff_seconds
from .errors import InfrastructureUnavailable
from .topic_sinks import TopicSinks
from .wakeup import make_waiter

logger = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 10.0


@dataclass
class RelayOptions:
    """Everything a relay run is configured with; defaults come from the settings in ``conf``."""

    alias: str = field(default_factory=conf.database_alias)
    lanes: list | None = field(default_factory=conf.relay_lanes)
    batch_size: int = field(default_factory=conf.relay_batch_size)
    batch_max_bytes: int = field(default_factory=conf.relay_batch_max_bytes)
    poll_interval: float = field(default_factory=conf.relay_poll_interval)
    lease_seconds: float = field(default_factory=conf.relay_lease_seconds)
    max_attempts: int = field(default_factory=conf.relay_max_attempts)
    dead_after_seconds: float = field(default_factory=conf.relay_dead_after_seconds)
    backoff: tuple = field(default_factory=conf.relay_backoff_seconds)
    delete_on_ack: bool = field(default_factory=conf.delete_on_ack)
    exactly_once: bool = field(default_factory=conf.relay_exactly_once)
    listen: bool = field(default_factory=conf.relay_listen)
    heartbeat_file: str | None = field(default_factory=conf.relay_heartbeat_file)
    metrics_port: int | None = field(default_factory=conf.relay_metrics_port)
    until_empty: bool = False


class Relay:
    """One relay process. ``run()`` returns when stopped (``stop()`` or a signal) or, with ``until_empty``, drained."""

    def __init__(self, options: RelayOptions, sink=None):
        self.options = options
        self.token = leases.new_token()
        self.sink = sink or TopicSinks(options.lease_seconds, options.exactly_once)  # Kafka or Redis, per topic
        self.waiter = make_waiter(options.alias, options.poll_interval, options.listen)
        self.stopping = threading.Event()
        self.held = set()
        self.lane_resume_at = {}  # lane -> monotonic time before which it waits (backoff)
        self.lane_failures = {}  # lane -> consecutive infrastructure failures
        self.failing_since = {}  # lane -> (monotonic time its failing streak began, last error's log text)
        self.gave_way = set()  # lanes given up because they could not be published; retaken once Kafka answers
        self.lease_until = {}  # lane -> monotonic time before which our lease surely lasts
        self.unreported_sent = set()  # lanes with a batch marked since the last renewal (last_sent_at)
        self.without_dead = set()  # held lanes seen without a dead row since we took them (see _ready_rows)
        self.found_lanes, self.lanes_found_at, self.last_pass_worked = [], None, False  # see _lanes
        self.relays, self.share = 1, None  # relays running, and how many lanes we may hold (_fair_share); None: all
        self.announced_waiting = False  # what our presence row says: commits wake us (ADR 24)
        self.state = "starting"
        self.metrics = RelayMetrics(options.lease_seconds, held=self.held)
        self.backlog = BacklogSampler(options.alias, self.metrics)
        self.sent_total = 0
        self.dead_total = 0
        self._progress_at = time.monotonic()
        self._progress_sent = 0

    # ------------------------------------------------------------------ loop

    def run(self) -> int:
        logger.info(
            "Outbox relay started: holder=%s lanes=%s batch_size=%s lease=%ss",
            leases.holder_name(),
            self.options.lanes or "all",
            self.options.batch_size,
            self.options.lease_seconds,
        )
        try:
            if self.options.metrics_port:
                self.metrics.serve(conf.metrics_address(), self.options.metrics_port)
            while not self.stopping.is_set():
                try:
                    worked = self._serve_lanes()
                    self._beat_if_healthy()
                    if (
                        not worked
                        and self.options.until_empty
                        and not store.any_pending(self.options.alias, self.options.lanes)
                    ):
                        break
                    if not self.lane_failures:
                        self._set_state("running")
                    failed = False
                except DatabaseError as exc:
                    self._database_failed(exc)
                    worked, failed = False, True
                if worked:
                    self.waiter.found_work()
                elif self.waiter.listens and not self.announced_waiting and not failed:
                    continue  # say we wait, then look once more before sleeping: a commit in between wakes us
                else:
                    self.waiter.wait(self.stopping)
        finally:
            self._shutdown()
        return 0

    def stop(self, *_):
        """Finish the batch in flight, then return from ``run()``. Safe from a signal handler."""
        self.stopping.set()

    def relay_once(self) -> int:
        """
        One pass of ``run()``'s loop, then shut down; returns the number of rows sent.

        For callers that cannot keep a relay running, such as a periodic Celery task. Each lane
        is served exactly as the loop serves it: its lease is acquired (a lane another relay
        holds is skipped), at most one batch of ``options.batch_size`` rows is published and
        recorded. The leases are released at the end, so that the next pass, which is a new
        ``Relay`` with a new token, need not wait for them to expire. Database errors propagate.
        """
        try:
            self._serve_lanes()
        finally:
            self._shutdown()
        return self.sent_total

    def _serve_lanes(self) -> bool:
        worked = False
        lanes = self._lanes()
        self._hand_back_beyond_share()
        for lane in lanes:
            if self.stopping.is_set():
                break
            if self._hold(lane):
                worked |= self._relay_batch(lane)
        self.last_pass_worked = worked
        self._report_progress()
        if self.metrics.serving:
            self.backlog.sample_if_due(lanes)
        return worked

    def _lanes(self):
        """
        The configured lanes, or else every lane with pending rows. Looking for them is a statement
        per lane and one more, so a relay that keeps finding work looks again only once per poll
        interval; after a pass without work, it always looks: a new lane waits no longer than on an idle relay.
        Our share of the lanes is counted again each time.
        """
        now = time.monotonic()
        if (
            self.lanes_found_at is None
            or not self.last_pass_worked
            or now - self.lanes_found_at >= self.options.poll_interval
        ):
            configured = self.options.lanes
            self.found_lanes = list(configured) if configured else store.pending_lanes(self.options.alias)
            self.lanes_found_at = now
            self._fair_share(configured)
        if self.options.lanes:
            return list(self.options.lanes)
        return sorted(set(self.found_lanes) | self.held | self.gave_way)

    def _fair_share(self, configured):
        """
        Count the running relays and set our share of the lanes: the lanes with pending rows or a
        live lease (or the configured ones), divided among the relays, rounded up. A second relay
        that starts takes about half the lanes, and the first hands them over (ADR 21).
        Our presence row also says whether the last pass found nothing, so that commits wake us (ADR 24).
        """
        alias = self.options.alias
        waiting = self.waiter.listens and not self.last_pass_worked
        leases.announce(alias, self.token, self.options.lease_seconds, waiting)
        self.announced_waiting = waiting
        self.relays = leases.relays_running(alias)
        if self.relays <= 1:
            self.share = None
            return
        lanes = set(configured) if configured else set(self.found_lanes) | set(leases.leased_lanes(alias))
        self.share = max(1, math.ceil(len(lanes) / self.relays))

    def _hand_back_beyond_share(self):
        """Release the lanes we hold beyond our share, between batches, for the relays that have fewer."""
        if self.share is None or len(self.held) <= self.share:
            return
        for lane in sorted(self.held)[self.share :]:
            self._release(lane)
            logger.info("Outbox relay handed lane %r over: %s relays share the lanes", lane, self.relays)

    def _hold(self, lane) -> bool:
        alias, seconds = self.options.alias, self.options.lease_seconds
        if lane in self.gave_way and not self._can_publish_again(lane):
            return False
        if lane in self.held:
            if self._failing_too_long(lane):
                self._give_way(lane)
                return False
            started = time.monotonic()  # before the statement: the database's expiry is no earlier
            if leases.renew(alias, lane, self.token, seconds, sent=lane in self.unreported_sent):
                self.unreported_sent.discard(lane)
                self.lease_until[lane] = started + seconds
                return True
            self._lost_lease(lane, "expired or taken over")
        if self.share is not None and len(self.held) >= self.share:
            return False  # our share is full: the lane is for another relay
        started = time.monotonic()
        if leases.try_acquire(alias, lane, self.token, seconds):
            self.held.add(lane)
            self.without_dead.discard(lane)  # a holder before us may have moved rows to dead
            self.lease_until[lane] = started + seconds
            logger.info("Outbox relay now holds lane %r", lane)
            return True
        return False

    def _lost_lease(self, lane, why):
        self._let_go(lane)
        self.unreported_sent.discard(lane)
        if lane in self.lane_failures:
            self.gave_way.add(lane)  # it could not publish either: take it again only once Kafka answers
        logger.warning("Outbox relay lost its lease on lane %r (%s); standing by", lane, why)

    def _release(self, lane):
        """Free the lane's lease at once, for another relay to take on its next poll."""
        leases.release(self.options.alias, lane, self.token, sent=lane in self.unreported_sent)
        self._let_go(lane)
        self.unreported_sent.discard(lane)

    def _let_go(self, lane):
        """The lane is no longer ours: the sink drops what it keeps for it (exactly-once: its producer)."""
        self.held.discard(lane)
        self.sink.forget(lane)

    # ------------------------------------------------------------------ giving way

    def _failing_too_long(self, lane) -> bool:
        """The lane could not be published for a whole lease: a standby may do better."""
        since = self.failing_since.get(lane)
        return since is not None and time.monotonic() - since[0] >= self.options.lease_seconds

    def _give_way(self, lane):
        """Stop renewing and release the lease at once, so a healthy standby takes the lane on its next poll."""
        since, error = self.failing_since[lane]
        self._release(lane)
        self.gave_way.add(lane)
        logger.error(
            "Outbox relay gave way on lane %r: it could not publish for %.0fs, longer than its %ss lease; "
            "released the lease for a standby. It takes lanes again once Kafka answers it. Last error: %s",
            lane,
            time.monotonic() - since,
            self.options.lease_seconds,
            error,
        )

    def _can_publish_again(self, lane) -> bool:
        """Probe the broker (at the lane's backoff pace) before competing for a lane we gave up."""
        if time.monotonic() < self.lane_resume_at.get(lane, 0):
            return False
        if not self.sink.can_reach(lane):
            self._note_failure(lane, "Kafka still does not answer this relay's producer")
            return False
        self.gave_way.discard(lane)
        self._lane_recovered(lane)
        logger.warning("Outbox relay can reach Kafka again; it competes for lane %r again", lane)
        return True

    # ------------------------------------------------------------------ one batch

    def _relay_batch(self, lane) -> bool:
        if time.monotonic() < self.lane_resume_at.get(lane, 0):
            return False
        began = time.monotonic()
        rows = self._ready_rows(lane)
        if not rows:  # checked first: a lane with nothing to publish needs no broker (it stays healthy without one)
            return False
        marked = self._prepared(lane)
        if marked is None:  # counted as the failure of the batch's first event, as a publish would count it
            self.metrics.batch_done(lane, time.monotonic() - began, 0, {"unavailable": 1})
            return False
        if marked:  # the predecessor's last transaction had published some of them
            rows = self._ready_rows(lane)
            if not rows:
                return True
        with function_trace("edx_event_bus_outbox.relay_batch"):
            set_custom_attribute("outbox_relay_lane", lane)
            set_custom_attribute("outbox_relay_batch_size", len(rows))
            started = time.monotonic()
            deliveries = self.sink.publish(rows, deadline=self._batch_deadline(lane))
            acked = [d for d in deliveries if d.error is None]
            failed = next((d for d in deliveries if d.error is not None), None)
            acked = [d for d in acked if failed is None or d.row_id < failed.row_id]
            marked = store.mark_sent(self.options.alias, acked, self.options.delete_on_ack, self._lease(lane))
            set_custom_attribute("outbox_relay_sent", marked)
        if marked < len(acked):  # the fence held: our lease ended while the batch was out
            self._lost_lease(
                lane, f"ended before {len(acked) - marked} published rows were marked; the new holder re-sends them"
            )
            acked = acked[:marked]
        if acked:
            self.unreported_sent.add(lane)  # last_sent_at is set with the next lease renewal
            self._audit(rows, acked)
            self.sent_total += len(acked)
        self.metrics.batch_done(lane, time.monotonic() - began, len(acked), _failures_by_error(deliveries))
        if lane not in self.held:
            return bool(acked)
        if failed is None:
            self._lane_recovered(lane)
        else:
            self._batch_failed(lane, next(r for r in rows if r.id == failed.row_id), failed.error, started)
        return bool(acked)

    def _prepared(self, lane) -> int | None:
        """
        Let the sink ready the lane before a batch: how many rows that marked, or ``None`` if it
        cannot. An exactly-once sink that has just fenced the lane's earlier producers names the
        rows their last transaction published (ADR 20): a relay that died before marking them
        left them pending, and they are marked now, not re-sent.
        """
        try:
            published = self.sink.prepare(lane)
        except InfrastructureUnavailable as exc:
            self._note_failure(lane, exc.log_text)
            return None
        if not published:
            return 0
        marked = store.mark_published(self.options.alias, published, self.options.delete_on_ack, self._lease(lane))
        if marked:
            self.unreported_sent.add(lane)
            logger.warning(
                "Outbox relay marked %s rows of lane %r sent: the lane's last Kafka transaction had published "
                "them, and its relay stopped before marking them",
                marked,
                lane,
            )
        return marked

    def _lease(self, lane):
        """The fence for this lane's writes: our lease, unexpired by the database's clock."""
        return leases.held(self.options.alias, lane, self.token)

    def _batch_deadline(self, lane):
        """When a batch must be settled: two thirds into the lease, keeping the last third to mark it."""
        return self.lease_until[lane] - self.options.lease_seconds / 3

    def _ready_rows(self, lane):
        """
        Pending rows in id order, less those held behind a dead row of their key, cut before the
        first one still waiting out a backoff (by the database's clock).

        Only a lane's lease holder moves its rows to dead, and a requeue only takes rows out of
        dead. So a lane seen without a dead row since we took it stays so until we move one
        there: it is looked at once per lease, not once per batch.
        """
        alias = self.options.alias
        any_dead = lane not in self.without_dead and holding.has_dead(alias, lane)
        if not any_dead:
            self.without_dead.add(lane)
        rows = holding.ready_batch(
            alias, lane, self.options.batch_size, self.options.batch_max_bytes, any_dead=any_dead
        )
        for index, row in enumerate(rows):
            if row.retry_later:
                return rows[:index]
        return rows

    def _batch_failed(self, lane, row, error, started):
        first, cap = self.options.backoff
        if isinstance(error, InfrastructureUnavailable):
            self._note_failure(lane, error.log_text, started)
            return
        status = store.record_failure(
            self.options.alias,
            row.id,
            error,
            backoff_seconds(row.attempts + 1, first, cap),
            self.options.max_attempts,
            self.options.dead_after_seconds,
            self._lease(lane),
        )
        if status is None:
            self._lost_lease(lane, "ended before a failed event could be recorded")
        elif status == store.STATUS.dead:
            self.without_dead.discard(lane)
            self.dead_total += 1
            self.metrics.moved_to_dead(lane)
            logger.error(
                "Outbox event moved to dead after %s attempts: id=%s event_id=%s type=%s topic=%s error=%s",
                row.attempts + 1,
                row.id,
                row.event_id,
                row.event_type,
                row.topic,
                error.log_text,
            )
        else:
            logger.warning(
                "Outbox event failed (attempt %s, at least %s and %.0fs before it goes dead), will retry: "
                "id=%s event_id=%s type=%s topic=%s error=%s",
                row.attempts + 1,
                self.options.max_attempts,
                self.options.dead_after_seconds,
                row.id,
                row.event_id,
                row.event_type,
                row.topic,
                error.log_text,
            )

    def _note_failure(self, lane, log_text, started=None):
        """The lane could not be published: back off, and remember since when, for giving way."""
        first, cap = self.options.backoff
        failures = self.lane_failures.get(lane, 0) + 1
        self.lane_failures[lane] = failures
        self.lane_resume_at[lane] = time.monotonic() + backoff_seconds(failures, first, cap)
        self.failing_since[lane] = (self.failing_since.get(lane, (started or time.monotonic(),))[0], log_text)
        self._set_state("waiting for Kafka or the schema registry", log_text)

    def _lane_recovered(self, lane):
        self.lane_failures.pop(lane, None)
        self.lane_resume_at.pop(lane, None)
        self.failing_since.pop(lane, None)

    # ------------------------------------------------------------------ reporting

    def _set_state(self, state, cause=None):
        """Log on change only: an outage gives one line when it starts and one when it ends."""
        if state == self.state:
            return
        self.metrics.state_changed(state, cause)
        if state == "running":
            logger.info("Outbox relay running%s", "" if self.state == "starting" else f" again (was: {self.state})")
        else:
            logger.warning("Outbox relay %s: %s", state, cause)
        self.state = state

    def _database_failed(self, exc):
        self._set_state("cannot use the database", f"{type(exc).__name__}: {exc}")
        connections[self.options.alias].close()  # reconnect on the next query
        for lane in list(self.held):  # the leases will be re-checked, never assumed, after an outage
            self._let_go(lane)
        first, cap = self.options.backoff
        self.stopping.wait(backoff_seconds(2, first, cap))

    def _audit(self, rows, acked):
        if not conf.audit_logging_enabled():
            return
        by_id = {row.id: row for row in rows}
        for delivery in acked:
            row = by_id[delivery.row_id]
            logger.info(
                "Outbox event published: topic=%s partition=%s offset=%s message_id=%s key=%s",
                row.topic,
                delivery.partition,
                delivery.offset,
                row.event_id,
                row.event_key,
            )

    def _report_progress(self):
        now = time.monotonic()
        if now - self._progress_at < PROGRESS_EVERY_SECONDS:
            return
        sent = self.sent_total - self._progress_sent
        if sent:
            logger.info(
                "Outbox relay progress: %s sent in the last %.0fs (%.0f/s), %s in total; lanes held: %s",
                sent,
                now - self._progress_at,
                sent / (now - self._progress_at),
                self.sent_total,
                ", ".join(sorted(self.held)) or "none",
            )
        self._progress_at, self._progress_sent = now, self.sent_total

    def _beat_if_healthy(self):
        """
        Touch the heartbeat file after a pass in which every lane was published or had nothing
        to publish (a standby has nothing to publish). A relay that cannot publish a lane, or
        gave one way, or cannot use the database, lets the file go stale, and so does a wedged
        loop: a liveness probe on the file restarts it (see docs/operations.rst). ``/healthz``
        answers from the same moment (metrics/relay.py).
        """
        if self.lane_failures or self.gave_way:
            return
        self.metrics.passed_healthily()
        if self.options.heartbeat_file:
            Path(self.options.heartbeat_file).touch()

    def _shutdown(self):
        self.metrics.close()
        self.sink.close()
        self.waiter.close()
        for lane in list(self.held):
            try:
                leases.release(self.options.alias, lane, self.token, sent=lane in self.unreported_sent)
            except DatabaseError:
                logger.warning("Outbox relay could not release lane %r; it frees itself when the lease expires", lane)
        try:
            leases.withdraw(self.options.alias, self.token)
        except DatabaseError:
            logger.warning("Outbox relay could not say it stopped; the others count it until its lease expires")
        logger.info("Outbox relay stopped: %s events sent, %s moved to dead", self.sent_total, self.dead_total)


def _failures_by_error(deliveries) -> dict:
    """How many events of a batch failed, by kind, for the ``events_failed`` counter."""
    failures = {}
    for delivery in deliveries:
        if delivery.error is not None:
            error = "unavailable" if isinstance(delivery.error, InfrastructureUnavailable) else "permanent"
            failures[error] = failures.get(error, 0) + 1
    return failures
