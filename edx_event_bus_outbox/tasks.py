"""
Celery tasks, for deployments that cannot run the long-running ``run_outbox_relay`` process
(ADR 0015's "non-worker" alternative). Schedule them with celery beat: see docs/celery.rst.

Celery is the package's ``[celery]`` extra; without it, importing this module raises
``CeleryNotInstalledError``.

Both tasks are safe to run concurrently, on any number of workers: lane leases let one relay
pass at a time publish a lane, and purging only deletes rows that are already sent.
"""

from datetime import timedelta

from django.utils import timezone
from openedx_events.tooling import load_all_signals

from . import conf
from .exceptions import CeleryNotInstalledError
from .outbox.retention import purge_sent
from .relay import store
from .relay.relay import Relay, RelayOptions

try:
    from celery import shared_task
except ModuleNotFoundError as error:  # Celery is an extra: only this module needs it.
    if error.name != "celery":
        raise  # Celery is there but broken (one of its own dependencies is missing): say so.
    raise CeleryNotInstalledError() from error


@shared_task(name="edx_event_bus_outbox.relay_outbox_batch")
def relay_outbox_batch(batch_size: int | None = None, lanes: list | None = None) -> dict:
    """
    Publish at most one batch per lane, then return ``{"sent", "dead", "lanes_held"}``.

    ``batch_size`` defaults to ``EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE`` and ``lanes`` to
    ``EVENT_BUS_OUTBOX_RELAY_LANES`` (every lane with pending rows). Lanes missing from
    ``lanes_held`` were held by another relay, and were skipped.
    """
    # The relay finds each row's signal by its event type, so every signal must be registered.
    load_all_signals()
    # No LISTEN: a single pass never waits for notifications.
    options = RelayOptions(listen=False)
    if batch_size is not None:
        options.batch_size = conf.require_positive_int("relay_outbox_batch(batch_size=...)", batch_size)
    if lanes is not None:
        options.lanes = conf.require_lane_names("relay_outbox_batch(lanes=...)", lanes)
    if not store.any_pending(options.alias, options.lanes):
        # Most passes find nothing; they then cost one indexed query and no Kafka connection.
        return {"sent": 0, "dead": 0, "lanes_held": []}
    relay = Relay(options)
    sent = relay.relay_once()
    return {"sent": sent, "dead": relay.dead_total, "lanes_held": sorted(relay.held)}


@shared_task(name="edx_event_bus_outbox.purge_outbox")
def purge_outbox(days: float | None = None, batch_size: int | None = None) -> int:
    """
    Delete sent rows older than ``days`` (default ``EVENT_BUS_OUTBOX_RETENTION_DAYS``), in
    batches of ``batch_size`` (default ``EVENT_BUS_OUTBOX_PURGE_BATCH_SIZE``); returns how many.
    """
    # A negative age would put the cutoff in the future and delete every sent row, today's too.
    days = (
        conf.retention_days() if days is None else conf.require_number("purge_outbox(days=...)", days, inclusive=True)
    )
    if batch_size is not None:
        conf.require_positive_int("purge_outbox(batch_size=...)", batch_size)
    cutoff = timezone.now() - timedelta(days=days)
    return purge_sent(cutoff, batch_size or conf.purge_batch_size())
