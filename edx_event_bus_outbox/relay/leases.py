"""
Lane leases: one active relay per lane, with an expiry and a fencing token.

Every operation is a single conditional UPDATE, which is atomic on PostgreSQL, MySQL/MariaDB
and SQLite alike, so no SELECT ... FOR UPDATE and no database-specific locking is needed.
Times are timezone-aware UTC from ``django.utils.timezone.now()``; relays on different hosts
must keep their clocks in sync to well under the lease time (NTP does). See
docs/decisions/0002-leases-and-fencing.rst.
"""
import os
import socket
import uuid
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .models import RelayLease


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def new_token() -> str:
    return uuid.uuid4().hex


def try_acquire(alias, lane, token, seconds) -> bool:
    """Take the lane if it is free or expired (or already ours); the token fences the old holder out."""
    _ensure_row(alias, lane)
    now = timezone.now()
    free = Q(expires_at__isnull=True) | Q(expires_at__lt=now) | Q(token=token)
    taken = RelayLease.objects.using(alias).filter(free, lane=lane).update(
        token=token, holder=holder_name(), expires_at=now + timedelta(seconds=seconds),
    )
    return taken == 1


def renew(alias, lane, token, seconds, sent_at=None) -> bool:
    """
    Extend our lease; False means it expired or was taken over, and we must stop publishing.

    ``sent_at`` (when the previous batch was marked) rides along, saving a statement per batch.
    """
    now = timezone.now()
    changes = {"expires_at": now + timedelta(seconds=seconds)}
    if sent_at is not None:
        changes["last_sent_at"] = sent_at
    return RelayLease.objects.using(alias).filter(lane=lane, token=token, expires_at__gt=now).update(**changes) == 1


def release(alias, lane, token, sent_at=None):
    """Give the lane up at once on a clean stop, so a standby need not wait for the expiry."""
    changes = {"expires_at": None, "holder": ""}
    if sent_at is not None:
        changes["last_sent_at"] = sent_at
    RelayLease.objects.using(alias).filter(lane=lane, token=token).update(**changes)


def _ensure_row(alias, lane):
    if RelayLease.objects.using(alias).filter(lane=lane).exists():
        return
    try:
        with transaction.atomic(using=alias):
            RelayLease.objects.using(alias).create(lane=lane)
    except IntegrityError:
        pass  # another relay created it first; either way the row exists now
