"""
``KafkaEventConsumer``: what ``python manage.py consume_events -t TOPIC -g GROUP`` runs when
``EVENT_BUS_CONSUMER = "edx_event_bus_outbox.KafkaEventConsumer"``.

One message at a time: decode it, emit its signal (retrying failed receivers), dead-letter or
skip it if that is impossible, and only then let its offset be committed. See
docs/consumer.rst and docs/decisions/0006-consumer-at-least-once.rst.
"""

import logging
import threading
import uuid

from confluent_kafka import Consumer, KafkaException
from django.db import DatabaseError
from openedx_events.event_bus import EventBusConsumer
from openedx_events.tooling import OpenEdxPublicSignal

from .. import conf
from ..kafka.config import consumer_config, full_topic, kafka_client, schema_registry_client
from ..metrics.consumer import ConsumerMetrics
from . import dispatch, inbox, monitoring
from .dead_letter import DeadLetterProducer
from .decoding import decode
from .errors import (
    ConsumerConfigurationError,
    ConsumerStuckError,
    FatalKafkaError,
    ReceiversFailed,
    RegistryUnavailable,
    ShutdownRequested,
    UnusableMessage,
)
from .offsets import OffsetTracker
from .replay import ReplayFrom, is_incremental, parse_offset_time
from .shutdown import stop_on_sigterm
from .work_cycle import prepare_for_new_work_cycle

logger = logging.getLogger(__name__)

LIBRDKAFKA_MAX_POLL_INTERVAL_MS = 300000  # librdkafka's default max.poll.interval.ms


class KafkaEventConsumer(EventBusConsumer):
    """
    Consume ``topic`` (without ``EVENT_BUS_TOPIC_PREFIX``) in consumer group ``group_id``.

    ``offset_time`` (an ISO-8601 timestamp, from ``--extra``) replays from that time and then
    keeps consuming. Unknown ``--extra`` options are refused rather than ignored.
    """

    def __init__(self, topic, group_id, offset_time=None, **unknown_options):
        if unknown_options:
            raise ConsumerConfigurationError(
                f"Unknown consumer option(s) {sorted(unknown_options)} in --extra; the only one is offset_time."
            )
        self.topic = conf.require_topic_name("the topic (consume_events -t)", topic, optional=False)
        self.group_id = conf.require_string("the consumer group (consume_events -g)", group_id, optional=False)
        self.offset_time = parse_offset_time(offset_time) if offset_time else None
        # Configuration errors fail now, not after joining the group.
        self.kafka_config = consumer_config(self.group_id)
        schema_registry_client()
        conf.check_settings()
        self._stopping = threading.Event()
        self._consecutive_errors = 0

    def stop(self):
        """Finish the current message, commit, close. Safe from a signal handler or another thread."""
        self._stopping.set()

    def consume_indefinitely(self):
        if not conf.consumers_enabled():
            logger.error("Kafka consumers not enabled (EVENT_BUS_KAFKA_CONSUMERS_ENABLED), exiting.")
            return
        with stop_on_sigterm(self.stop):
            self._run()

    # ------------------------------------------------------------------ the loop

    def _run(self):
        self._run_context = {"full_topic": full_topic(self.topic), "consumer_group": self.group_id}
        self._retry_policy = dispatch.RetryPolicy.from_settings()
        dead_letter_topic = conf.consumer_dead_letter_topic()
        self._dead_letters = DeadLetterProducer(dead_letter_topic, self.group_id) if dead_letter_topic else None
        self._deduplicate = conf.consumer_deduplicate()
        if self._deduplicate:
            # Before joining the group: a receiver the inbox cannot tell apart is a configuration error.
            dispatch.check_receiver_ids(OpenEdxPublicSignal.all_events())
            self._token = uuid.uuid4().hex  # this consumer's inbox claims
            self._claim_seconds = conf.consumer_inbox_claim_seconds()
        # Read once per run, not per message: settings lookups are a measurable share of the loop.
        self._audit = conf.audit_logging_enabled()
        self._errors_limit = conf.consumer_consecutive_errors_limit()
        self._metrics = ConsumerMetrics(self._run_context["full_topic"], self._max_poll_interval())
        consumer = kafka_client(Consumer, self.kafka_config)
        self._offsets = OffsetTracker(consumer, conf.consumer_commit_interval())
        consumer.subscribe([self._run_context["full_topic"]], **self._rebalance_callbacks())
        logger.info(
            "Running consumer for %r (dead-letter topic: %s, deduplicate: %s)",
            self._run_context,
            dead_letter_topic,
            self._deduplicate,
        )
        try:
            if port := conf.consumer_metrics_port():
                self._metrics.serve(conf.metrics_address(), port)  # before joining the group: a busy port fails now
            self._loop(consumer)
        finally:
            self._close(consumer)

    def _max_poll_interval(self) -> float:
        """Seconds: how long Kafka lets this consumer go without polling, and so what /healthz allows."""
        return float(self.kafka_config.get("max.poll.interval.ms", LIBRDKAFKA_MAX_POLL_INTERVAL_MS)) / 1000

    def _rebalance_callbacks(self) -> dict:
        callbacks = {"on_revoke": self._offsets.on_revoke, "on_lost": self._offsets.on_lost}
        if self.offset_time:
            logger.info(
                "Replaying from %s: each partition first assigned to this process starts at its first "
                "message at or after that time; consumption then continues.",
                self.offset_time.isoformat(),
            )
            callbacks["on_assign"] = ReplayFrom(self.offset_time, is_incremental(self.kafka_config)).on_assign
        return callbacks

    def _loop(self, consumer):
        poll_timeout = conf.consumer_poll_timeout()
        while not self._stopping.is_set():
            self._check_error_budget()
            with monitoring.function_trace("consumer.consume"):
                msg = consumer.poll(timeout=poll_timeout)
                self._metrics.polled(msg)
                monitoring.message_attributes(self._run_context, msg)
                if msg is None:
                    self._offsets.commit()  # idle: a good moment to commit what is done
                elif msg.error() is not None:
                    self._poll_failed(msg.error())
                else:
                    try:
                        self._handle(msg)
                    except ShutdownRequested:
                        return  # not marked done: the message is re-delivered
                    self._offsets.done(msg)
                    self._offsets.commit_if_due()

    def _close(self, consumer):
        if self._stopping.is_set():
            logger.info("Stopping: committing processed offsets and closing the consumer.")
        try:
            self._offsets.commit()
        finally:
            self._metrics.close()
            consumer.close()
            if self._dead_letters:
                self._dead_letters.close()
            logger.info("Consumer for %r closed.", self._run_context)

    # ------------------------------------------------------------------ one message

    def _handle(self, msg):
        prepare_for_new_work_cycle()
        if self._audit:
            monitoring.audit_received(msg)
        with monitoring.function_trace("emit_signals_from_message"):
            try:
                event, handled = self._decode(msg)
                outcome = self._emit(msg, event, handled)
            except UnusableMessage as exc:
                outcome = self._reject(msg, exc.reason, str(exc), exc)
        if self._audit:
            monitoring.audit_done(msg, outcome)

    def _decode(self, msg):
        """Decode, and read the inbox; registry or database outages are waited out, never skipped."""
        while True:
            try:
                event = decode(msg)
                handled = inbox.handled_receivers(self.group_id, event.metadata.id) if self._deduplicate else set()
                return event, handled
            except (RegistryUnavailable, DatabaseError) as exc:
                self._consecutive_errors += 1
                monitoring.record_error(self._run_context, exc, msg)
                self._check_error_budget()
                self._wait(conf.consumer_poll_failure_sleep())
                prepare_for_new_work_cycle()

    def _emit(self, msg, event, handled) -> str:
        if self._deduplicate:
            return self._emit_claimed(msg, event, handled)
        outcome = dispatch.emit(event, self._retry_policy, wait=self._wait, prepare=prepare_for_new_work_cycle)
        return self._failed(msg, outcome) if outcome.failures else self._processed(outcome.retries)

    def _emit_claimed(self, msg, event, handled) -> str:
        """
        With the inbox: run only the receivers this consumer claimed, and wait for those that
        another consumer holding the same message (during a rebalance) has claimed, until they
        are done, released or abandoned. See ADR 12.
        """
        done, ran, retries = set(handled), False, 0
        while True:
            pending = {dispatch.receiver_id(r) for r in dispatch.live_receivers(event.signal)} - done
            if not pending:
                break
            claimed = self._with_inbox(
                msg, inbox.claim, self.group_id, event.metadata.id, pending, self._token, self._claim_seconds
            )
            if claimed:
                ran, succeeded = True, set()
                try:
                    outcome = dispatch.emit(
                        event,
                        self._retry_policy,
                        wait=self._wait,
                        prepare=prepare_for_new_work_cycle,
                        already_handled=done | (pending - claimed),
                        record=self._recorder(event, succeeded),
                    )
                except (UnusableMessage, ShutdownRequested):
                    self._release(event, claimed - succeeded)  # not run: nobody need wait for these claims
                    raise
                retries += outcome.retries
                if outcome.failures:
                    self._release(event, claimed - succeeded)
                    return self._failed(msg, outcome)
                done |= claimed
            if not pending - claimed:
                break
            self._wait(conf.consumer_poll_failure_sleep())  # another consumer runs them: wait for its outcome
            done |= self._with_inbox(msg, inbox.handled_receivers, self.group_id, event.metadata.id)
        if not ran:
            self._metrics.duplicate()
            monitoring.outcome_attributes("duplicate", 0)
            return "duplicate (every receiver already handled this event for this group)"
        return self._processed(retries)

    def _processed(self, retries) -> str:
        self._consecutive_errors = 0
        self._metrics.processed(retries)
        monitoring.outcome_attributes("processed", retries)
        return "processed successfully"

    def _failed(self, msg, outcome) -> str:
        self._consecutive_errors += 1
        error = ReceiversFailed(outcome.failures, outcome.retries)
        return self._reject(msg, "receiver_failed", str(error), error, retries=outcome.retries)

    def _with_inbox(self, msg, operation, *args):
        """An inbox statement; a database outage is waited out, as for reading the inbox in ``_decode``."""
        while True:
            try:
                return operation(*args)
            except DatabaseError as exc:
                self._consecutive_errors += 1
                monitoring.record_error(self._run_context, exc, msg)
                self._check_error_budget()
                self._wait(conf.consumer_poll_failure_sleep())
                prepare_for_new_work_cycle()

    def _recorder(self, event, succeeded):
        def record(receivers):
            if not receivers:
                return
            ids = [dispatch.receiver_id(r) for r in receivers]
            succeeded.update(ids)
            try:
                inbox.record(self.group_id, event.metadata.id, ids)
            except DatabaseError:
                # The receivers did run; only their deduplication is lost, so carry on.
                logger.exception(
                    "Could not record event_id=%s in the consumer inbox; a re-delivery would call its receivers again.",
                    event.metadata.id,
                )

        return record

    def _release(self, event, receiver_ids):
        try:
            inbox.release(self.group_id, event.metadata.id, receiver_ids, self._token)
        except DatabaseError:
            # The claims then go stale after EVENT_BUS_OUTBOX_CONSUMER_INBOX_CLAIM_SECONDS.
            logger.exception("Could not release inbox claims of event_id=%s.", event.metadata.id)

    def _reject(self, msg, reason, error, exc, retries=0) -> str:
        """Dead-letter the message if there is a topic for it, else log and skip it (as edx-event-bus-kafka does)."""
        monitoring.record_error(self._run_context, exc, msg)
        if self._dead_letters:
            delivered = self._dead_letters.send(msg, reason=reason, error=error)
            self._metrics.dead_lettered(reason, retries)
            monitoring.outcome_attributes("dead_lettered", retries)
            logger.warning(
                "Message dead-lettered to %s[%s]@%s (%s): %s",
                delivered.topic(),
                delivered.partition(),
                delivered.offset(),
                reason,
                monitoring.describe(msg),
            )
            return "dead-lettered"
        self._metrics.skipped(reason, retries)
        monitoring.outcome_attributes("skipped", retries)
        logger.error(
            "Message skipped (%s; no EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TOPIC): %s", reason, monitoring.describe(msg)
        )
        return "skipped"

    # ------------------------------------------------------------------ errors and waiting

    def _poll_failed(self, kafka_error):
        monitoring.error_attributes(kafka_error)
        self._consecutive_errors += 1
        monitoring.record_error(self._run_context, KafkaException(kafka_error))
        if kafka_error.fatal():
            raise FatalKafkaError(kafka_error)
        self._stopping.wait(conf.consumer_poll_failure_sleep())  # no message is in hand: just wake on SIGTERM

    def _check_error_budget(self):
        if self._errors_limit and self._consecutive_errors >= self._errors_limit:
            raise ConsumerStuckError(self._consecutive_errors)

    def _wait(self, seconds):
        """Sleep before retrying the current message, but on SIGTERM abandon it (uncommitted) at once."""
        if self._stopping.wait(seconds):
            raise ShutdownRequested()
