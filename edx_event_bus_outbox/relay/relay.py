"""
The relay loop: hold lane leases, move each lane's pending rows to Kafka in id order,
record the outcome, and wait cheaply when there is nothing to do.

Guarantees and their reasons live in docs/decisions/0001-ordering-and-claiming.rst,
0002-leases-and-fencing.rst and 0003-retries-and-the-dead-state.rst.
"""
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from django.db import DatabaseError, connections
from django.utils import timezone
from edx_django_utils.monitoring import function_trace, set_custom_attribute

from .. import conf
from . import holding, leases, store
from .backoff import backoff_seconds
from .errors import InfrastructureUnavailable
from .sink import KafkaSink
from .wakeup import make_waiter

logger = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 10.0


@dataclass
class RelayOptions:
    """Everything a relay run is configured with; defaults come from the settings in ``conf``."""
    alias: str = field(default_factory=conf.database_alias)
    lanes: Optional[list] = field(default_factory=conf.relay_lanes)
    batch_size: int = field(default_factory=conf.relay_batch_size)
    poll_interval: float = field(default_factory=conf.relay_poll_interval)
    lease_seconds: float = field(default_factory=conf.relay_lease_seconds)
    max_attempts: int = field(default_factory=conf.relay_max_attempts)
    dead_after_seconds: float = field(default_factory=conf.relay_dead_after_seconds)
    backoff: tuple = field(default_factory=conf.relay_backoff_seconds)
    delete_on_ack: bool = field(default_factory=conf.delete_on_ack)
    listen: bool = field(default_factory=conf.relay_listen)
    heartbeat_file: Optional[str] = field(default_factory=conf.relay_heartbeat_file)
    until_empty: bool = False


class Relay:
    """One relay process. ``run()`` returns when stopped (``stop()``, a signal) or, with ``until_empty``, when drained."""

    def __init__(self, options: RelayOptions, sink: Optional[KafkaSink] = None):
        self.options = options
        self.token = leases.new_token()
        self.sink = sink or KafkaSink(options.lease_seconds)
        self.waiter = make_waiter(options.alias, options.poll_interval, options.listen)
        self.stopping = threading.Event()
        self.held = set()
        self.lane_resume_at = {}   # lane -> monotonic time before which it waits (backoff)
        self.lane_failures = {}    # lane -> consecutive infrastructure failures
        self.unreported_sent = {}  # lane -> when a batch was last marked, not yet on the lease row
        self.state = "starting"
        self.sent_total = 0
        self.dead_total = 0
        self._progress_at = time.monotonic()
        self._progress_sent = 0

    # ------------------------------------------------------------------ loop

    def run(self) -> int:
        logger.info("Outbox relay started: holder=%s lanes=%s batch_size=%s lease=%ss",
                    leases.holder_name(), self.options.lanes or "all", self.options.batch_size,
                    self.options.lease_seconds)
        try:
            while not self.stopping.is_set():
                self._beat()
                try:
                    worked = self._serve_lanes()
                    if not worked and self.options.until_empty and not store.any_pending(
                            self.options.alias, self.options.lanes):
                        break
                    if not self.lane_failures:
                        self._set_state("running")
                except DatabaseError as exc:
                    self._database_failed(exc)
                    worked = False
                if worked:
                    self.waiter.found_work()
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
        for lane in self._lanes():
            if self.stopping.is_set():
                break
            if self._hold(lane):
                worked |= self._relay_batch(lane)
        self._report_progress()
        return worked

    def _lanes(self):
        if self.options.lanes:
            return list(self.options.lanes)
        return sorted(set(store.pending_lanes(self.options.alias)) | self.held)

    def _hold(self, lane) -> bool:
        alias, seconds = self.options.alias, self.options.lease_seconds
        if lane in self.held:
            if leases.renew(alias, lane, self.token, seconds, sent_at=self.unreported_sent.pop(lane, None)):
                return True
            self.held.discard(lane)
            logger.warning("Outbox relay lost its lease on lane %r (expired or taken over); standing by", lane)
        if leases.try_acquire(alias, lane, self.token, seconds):
            self.held.add(lane)
            logger.info("Outbox relay now holds lane %r", lane)
            return True
        return False

    # ------------------------------------------------------------------ one batch

    def _relay_batch(self, lane) -> bool:
        if time.monotonic() < self.lane_resume_at.get(lane, 0):
            return False
        rows = self._ready_rows(lane)
        if not rows:
            return False
        with function_trace("edx_event_bus_outbox.relay_batch"):
            set_custom_attribute("outbox_relay_lane", lane)
            set_custom_attribute("outbox_relay_batch_size", len(rows))
            deliveries = self.sink.publish(rows)
            acked = [d for d in deliveries if d.error is None]
            failed = next((d for d in deliveries if d.error is not None), None)
            acked = [d for d in acked if failed is None or d.row_id < failed.row_id]
            store.mark_sent(self.options.alias, acked, self.options.delete_on_ack)
            set_custom_attribute("outbox_relay_sent", len(acked))
        if acked:
            self.unreported_sent[lane] = timezone.now()  # recorded with the next lease renewal
            self._audit(rows, acked)
            self.sent_total += len(acked)
        if failed is None:
            self._lane_recovered(lane)
        else:
            self._batch_failed(lane, next(r for r in rows if r.id == failed.row_id), failed.error)
        return bool(acked)

    def _ready_rows(self, lane):
        """Pending rows in id order (less those held behind a dead row), cut before the first one in backoff."""
        rows = holding.ready_batch(self.options.alias, lane, self.options.batch_size)
        now = timezone.now()
        for index, row in enumerate(rows):
            if row.next_attempt_at and row.next_attempt_at > now:
                return rows[:index]
        return rows

    def _batch_failed(self, lane, row, error):
        first, cap = self.options.backoff
        if isinstance(error, InfrastructureUnavailable):
            failures = self.lane_failures.get(lane, 0) + 1
            self.lane_failures[lane] = failures
            self.lane_resume_at[lane] = time.monotonic() + backoff_seconds(failures, first, cap)
            self._set_state("waiting for Kafka or the schema registry", error.log_text)
            return
        status = store.record_failure(self.options.alias, row.id, error,
                                      backoff_seconds(row.attempts + 1, first, cap), self.options.max_attempts,
                                      self.options.dead_after_seconds)
        if status == store.STATUS.dead:
            self.dead_total += 1
            logger.error("Outbox event moved to dead after %s attempts: id=%s event_id=%s type=%s topic=%s error=%s",
                         row.attempts + 1, row.id, row.event_id, row.event_type, row.topic, error.log_text)
        else:
            logger.warning("Outbox event failed (attempt %s, at least %s and %.0fs before it goes dead), will retry: "
                           "id=%s event_id=%s type=%s topic=%s error=%s", row.attempts + 1, self.options.max_attempts,
                           self.options.dead_after_seconds, row.id,
                           row.event_id, row.event_type, row.topic, error.log_text)

    def _lane_recovered(self, lane):
        self.lane_failures.pop(lane, None)
        self.lane_resume_at.pop(lane, None)

    # ------------------------------------------------------------------ reporting

    def _set_state(self, state, cause=None):
        """Log on change only: an outage gives one line when it starts and one when it ends."""
        if state == self.state:
            return
        if state == "running":
            logger.info("Outbox relay running%s", "" if self.state == "starting" else f" again (was: {self.state})")
        else:
            logger.warning("Outbox relay %s: %s", state, cause)
        self.state = state

    def _database_failed(self, exc):
        self._set_state("cannot use the database", f"{type(exc).__name__}: {exc}")
        connections[self.options.alias].close()  # reconnect on the next query
        self.held.clear()  # the leases will be re-checked, never assumed, after an outage
        first, cap = self.options.backoff
        self.stopping.wait(backoff_seconds(2, first, cap))

    def _audit(self, rows, acked):
        if not conf.audit_logging_enabled():
            return
        by_id = {row.id: row for row in rows}
        for delivery in acked:
            row = by_id[delivery.row_id]
            logger.info("Outbox event published: topic=%s partition=%s offset=%s message_id=%s key=%s",
                        row.topic, delivery.partition, delivery.offset, row.event_id, row.event_key)

    def _report_progress(self):
        now = time.monotonic()
        if now - self._progress_at < PROGRESS_EVERY_SECONDS:
            return
        sent = self.sent_total - self._progress_sent
        if sent:
            logger.info("Outbox relay progress: %s sent in the last %.0fs (%.0f/s), %s in total; lanes held: %s",
                        sent, now - self._progress_at, sent / (now - self._progress_at), self.sent_total,
                        ", ".join(sorted(self.held)) or "none")
        self._progress_at, self._progress_sent = now, self.sent_total

    def _beat(self):
        if self.options.heartbeat_file:
            Path(self.options.heartbeat_file).touch()

    def _shutdown(self):
        self.sink.close()
        self.waiter.close()
        for lane in list(self.held):
            try:
                leases.release(self.options.alias, lane, self.token, sent_at=self.unreported_sent.pop(lane, None))
            except DatabaseError:
                logger.warning("Outbox relay could not release lane %r; it frees itself when the lease expires", lane)
        logger.info("Outbox relay stopped: %s events sent, %s moved to dead", self.sent_total, self.dead_total)
