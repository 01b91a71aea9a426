"""
Say so when ``send()`` is called where the outbox cannot keep its promise.

The promise is that an event commits or rolls back with the caller's data. It holds only when
``send()`` runs inside the caller's transaction on ``EVENT_BUS_OUTBOX_DATABASE``. It does not
hold in two cases:

* **autocommit**: no ``atomic()`` block is open on that database (a management command, a
  Celery task, a view under ``non_atomic_requests``, or ``EVENT_BUS_OUTBOX_DATABASE`` not being
  the alias ``ATOMIC_REQUESTS`` covers). The row commits on its own, apart from the caller's
  data: a crash between the two loses one of them.
* **after-commit**: an ``on_commit`` callback is running (openedx-events' proposed
  ``send_on_commit``, or a receiver deferred by hand). The caller's data has already committed;
  a crash before the callback loses the event, even if the callback opens its own ``atomic()``.

The event is still written. Each case logs one WARNING per (event type, topic) per process,
and sets a monitoring attribute on every such call.
"""

import logging
import sys

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from edx_django_utils.monitoring import set_custom_attribute

logger = logging.getLogger(__name__)

AUTOCOMMIT = "autocommit"
AFTER_COMMIT = "after-commit"

# Django runs on_commit callbacks from these two methods only: after the outermost commit, or at
# once when on_commit() is called with no transaction open.
_RUN_HOOKS = BaseDatabaseWrapper.run_and_clear_commit_hooks.__code__
_ON_COMMIT = BaseDatabaseWrapper.on_commit.__code__

# Where send() was, what can go wrong, and what to do: for the warning.
_EXPLANATIONS = {
    AUTOCOMMIT: (
        "in autocommit",
        "a crash between the two commits loses one of them",
        "Wrap the code that changes the data and sends the event in transaction.atomic()",
    ),
    AFTER_COMMIT: (
        "from an on_commit callback",
        "the caller's data had already committed, and a crash before the callback runs loses the event",
        "Send the event inside the caller's transaction instead",
    ),
}

_warned = set()  # (event type, topic) pairs warned about in this process


def check_send_is_atomic(event_type: str, topic: str, event_id, alias: str) -> None:
    """Warn (once per event type and topic) and set a monitoring attribute if the row is not atomic with the caller."""
    reason = _why_not_atomic(alias)
    if reason is None:
        return
    # .. custom_attribute_name: outbox_send_outside_transaction
    # .. custom_attribute_description: Set when ``send()`` wrote an outbox row that is not atomic
    #   with the caller's data: ``autocommit`` (no ``atomic()`` open on EVENT_BUS_OUTBOX_DATABASE)
    #   or ``after-commit`` (called from an ``on_commit`` callback).
    set_custom_attribute("outbox_send_outside_transaction", reason)
    if (event_type, topic) in _warned:
        return
    _warned.add((event_type, topic))
    where, consequence, remedy = _EXPLANATIONS[reason]
    logger.warning(
        "Event %s (type %s, topic %s) was written to the outbox %s, so it is not atomic with the caller's data: "
        "%s. %s (database %r; see the operations runbook, 'send() outside a transaction'). "
        "Logged once per event type and topic.",
        event_id,
        event_type,
        topic,
        where,
        consequence,
        remedy,
        alias,
    )


def _why_not_atomic(alias):
    if _in_commit_hook():
        return AFTER_COMMIT
    if connections[alias].get_autocommit():
        return AUTOCOMMIT
    return None


def _in_commit_hook() -> bool:
    """
    Whether an ``on_commit`` callback is running in this thread, on any connection.

    Django's own flag (``run_commit_hooks_on_set_autocommit_on``) is cleared once a callback
    commits its own ``atomic()``, so the callbacks after it would go unseen: this looks for the
    method that runs callbacks on the call stack instead. For a stack 150 frames deep that
    costs about as much as ``sum(range(1000))``, under 1% of ``send()`` (ADR 14).
    """
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code is _RUN_HOOKS or code is _ON_COMMIT:  # by identity: hashing a code object is slow
            return True
        frame = frame.f_back
    return False
