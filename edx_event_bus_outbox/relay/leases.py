"""
Lane leases: one active relay per lane, with an expiry and a fencing token.

Every operation is a single conditional UPDATE, which is atomic on PostgreSQL, MySQL/MariaDB
and SQLite alike, so no SELECT ... FOR UPDATE and no database-specific locking is needed.
Every time in those statements is the database's clock (``Now()``), never the relay host's:
relays on hosts whose clocks disagree still agree on who holds a lane. See
docs/decisions/0002-leases-and-fencing.rst.
"""

import os
import socket
import uuid
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, Exists, ExpressionWrapper, Q
from django.db.models.functions import Now

from .models import RelayLease, RelayPresence

# A relay's presence row is deleted this long after it expired (a relay killed without a goodbye).
FORGET_PRESENCE_AFTER_SECONDS = 3600


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def new_token() -> str:
    return uuid.uuid4().hex


def try_acquire(alias, lane, token, seconds) -> bool:
    """Take the lane if it is free or expired (or already ours); the token fences the old holder out."""
    _ensure_row(alias, lane)
    free = Q(expires_at__isnull=True) | Q(expires_at__lt=Now()) | Q(token=token)
    taken = (
        RelayLease.objects.using(alias)
        .filter(free, lane=lane)
        .update(
            token=token,
            holder=holder_name(),
            expires_at=_from_now(seconds),
        )
    )
    return taken == 1


def renew(alias, lane, token, seconds, sent=False) -> bool:
    """
    Extend our lease; False means it expired or was taken over, and we must stop publishing.

    ``sent`` (a batch was marked since the last renewal) sets ``last_sent_at`` in the same
    statement, saving a statement per batch.
    """
    changes = {"expires_at": _from_now(seconds)}
    if sent:
        changes["last_sent_at"] = Now()
    return held(alias, lane, token).update(**changes) == 1


def release(alias, lane, token, sent=False):
    """Give the lane up at once (a clean stop, or giving way), so a standby need not wait for the expiry."""
    changes = {"expires_at": None, "holder": ""}
    if sent:
        changes["last_sent_at"] = Now()
    RelayLease.objects.using(alias).filter(lane=lane, token=token).update(**changes)


def held(alias, lane, token):
    """Our lease on the lane, if it is still ours and unexpired by the database's clock."""
    return RelayLease.objects.using(alias).filter(lane=lane, token=token, expires_at__gt=Now())


def fence(alias, lane, token):
    """
    A condition for any write to the lane's rows: true only while we hold the lease.

    Added to the write's own WHERE clause, so the check and the write are one atomic
    statement: a relay that lost its lease changes nothing, however late it runs.
    """
    return Exists(held(alias, lane, token))


def _from_now(seconds):
    return ExpressionWrapper(Now() + timedelta(seconds=seconds), output_field=DateTimeField())


def _ensure_row(alias, lane):
    if RelayLease.objects.using(alias).filter(lane=lane).exists():
        return
    try:
        with transaction.atomic(using=alias):
            RelayLease.objects.using(alias).create(lane=lane)
    except IntegrityError:
        pass  # another relay created it first; either way the row exists now


def announce(alias, token, seconds, waiting=False):
    """
    Say that our relay runs for ``seconds`` more, by the database's clock, and whether it is
    ``waiting`` to be woken by commits (ADR 24); forget long-dead relays.
    """
    fields = {"holder": holder_name(), "expires_at": _from_now(seconds), "waiting": waiting}
    if not RelayPresence.objects.using(alias).filter(token=token).update(**fields):
        RelayPresence.objects.using(alias).create(token=token, **fields)
    RelayPresence.objects.using(alias).filter(expires_at__lt=_from_now(-FORGET_PRESENCE_AFTER_SECONDS)).delete()


def relays_running(alias) -> int:
    """How many relays announced themselves and have not expired (ours among them)."""
    return RelayPresence.objects.using(alias).filter(expires_at__gt=Now()).count()


def withdraw(alias, token):
    """Our relay stops: the others count one relay fewer at once, and take its share."""
    RelayPresence.objects.using(alias).filter(token=token).delete()


def leased_lanes(alias) -> list:
    """The lanes some relay holds an unexpired lease on."""
    return list(RelayLease.objects.using(alias).filter(expires_at__gt=Now()).values_list("lane", flat=True))
