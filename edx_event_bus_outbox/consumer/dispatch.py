"""
Emit a decoded event to its receivers, retrying only the receivers that failed.

The first attempt is openedx-events' ``send_event_with_custom_metadata``: it validates the
data, honours a disabled signal, sets ``from_event_bus=True`` (so the event is never produced
back to the bus) and calls every receiver through ``send_robust``, which returns each
receiver's exception instead of raising it. Failed receivers are then called again, alone and
with the same arguments, after a backoff -- a receiver that succeeded is not called twice
because another one failed.
"""

import logging
import sys
import types
from collections.abc import Callable, Iterable
from typing import NamedTuple

from asgiref.sync import async_to_sync, iscoroutinefunction
from openedx_events.exceptions import SenderValidationError
from openedx_events.tooling import SIGNAL_PROCESSED_FROM_EVENT_BUS

from .. import conf
from .decoding import ConsumedEvent
from .errors import ReceiverIdentityError, UnusableMessage
from .monitoring import function_trace

logger = logging.getLogger(__name__)

# Stands for "the send itself raised" (settings.DEBUG, or a signal switched to
# allow_send_event_failure): we cannot tell which receivers ran, so the retry sends again.
WHOLE_SIGNAL = None
RECEIVER_NAME_LENGTH = 200  # the inbox's receiver column
RECEIVER_ID_ATTRIBUTE = "outbox_receiver_id"


class RetryPolicy(NamedTuple):
    max_retries: int
    backoff: float
    backoff_max: float

    @classmethod
    def from_settings(cls):
        return cls(conf.consumer_max_retries(), conf.consumer_retry_backoff(), conf.consumer_retry_backoff_max())

    def delay(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1-based): exponential, capped."""
        return min(self.backoff * 2 ** (retry - 1), self.backoff_max)


class Outcome(NamedTuple):
    failures: list  # [(receiver name, exception)] still failing after the last retry
    retries: int


def receiver_name(receiver) -> str:
    """How log lines and errors name a receiver: ``module.qualname`` (not unique; see ``receiver_id``)."""
    if receiver is WHOLE_SIGNAL:
        return "(signal)"
    # A callable object has no __qualname__ of its own; its class names it.
    qualname = getattr(receiver, "__qualname__", None) or type(receiver).__qualname__
    module = getattr(receiver, "__module__", None) or type(receiver).__module__
    return f"{module}.{qualname}"[:RECEIVER_NAME_LENGTH]


def receiver_id(receiver) -> str:
    """
    The inbox's identity of a receiver: unique among the receivers of a process, and the same in
    every process. Its ``outbox_receiver_id`` attribute when it has one; else ``module.qualname``
    of a function (or classmethod) that importing that name gives back. Anything else --
    lambdas, closures, partials, bound methods of instances, callable objects -- shares its
    name with other receivers and raises ``ReceiverIdentityError``. See ADR 12.
    """
    explicit = getattr(receiver, RECEIVER_ID_ATTRIBUTE, None)
    if explicit is not None:
        if not isinstance(explicit, str) or not 0 < len(explicit) <= RECEIVER_NAME_LENGTH:
            raise ReceiverIdentityError(
                f"Receiver {receiver_name(receiver)} has {RECEIVER_ID_ATTRIBUTE}={explicit!r}; it must be a "
                f"non-empty string of at most {RECEIVER_NAME_LENGTH} characters."
            )
        return explicit
    name = _importable_name(receiver)
    if name is None or len(name) > RECEIVER_NAME_LENGTH:
        raise ReceiverIdentityError(
            f"Receiver {receiver_name(receiver)} ({type(receiver).__name__}) has no identity that deduplication "
            "can rely on: its module.qualname is shared with other receivers, or does not lead back to it "
            f"(lambdas, closures, partials, bound methods, callable objects), or is longer than "
            f"{RECEIVER_NAME_LENGTH} characters. Give it a unique `{RECEIVER_ID_ATTRIBUTE}` string attribute, "
            "connect a module-level function instead, or turn EVENT_BUS_OUTBOX_CONSUMER_DEDUPLICATE off."
        )
    return name


def _importable_name(receiver):
    """``module.qualname`` if importing that name gives back ``receiver`` (or a wrapper of it), else None."""
    if isinstance(receiver, types.MethodType):
        if not isinstance(receiver.__self__, type):
            return None  # bound to an instance: every instance has the same name
    elif not isinstance(receiver, types.FunctionType):
        return None  # partials, callable objects, builtins
    module, qualname = receiver.__module__, receiver.__qualname__
    if "<" in qualname:
        return None  # <lambda>, <locals>: many functions, one name
    found = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    while found is not None:
        if found is receiver or found == receiver:  # bound classmethods are equal, not identical
            return f"{module}.{qualname}"
        found = getattr(found, "__wrapped__", None)  # decorated under the same name after connecting
    return None


def check_receiver_ids(signals) -> None:
    """Every receiver of ``signals`` has an identity, and no two of one signal share it; at startup."""
    for signal in signals:
        seen = {}
        for receiver in live_receivers(signal):
            identity = receiver_id(receiver)
            if identity in seen and seen[identity] != receiver:
                raise ReceiverIdentityError(
                    f"Receivers {receiver_name(seen[identity])} and {receiver_name(receiver)} of "
                    f"{signal.event_type} share the identity {identity!r}; deduplication would take one for "
                    f"the other. Give them different `{RECEIVER_ID_ATTRIBUTE}` values."
                )
            seen[identity] = receiver


def live_receivers(signal) -> list:
    # Django has no public way to list receivers; 4.2 returns a list, 5.x (sync, async) lists.
    found = signal._live_receivers(None)
    return [*found[0], *found[1]] if isinstance(found, tuple) else list(found)


def emit(
    event: ConsumedEvent,
    policy: RetryPolicy,
    *,
    wait: Callable[[float], None],
    prepare: Callable[[], None],
    already_handled: Iterable[str] = (),
    record: Callable[[list], None] = None,
) -> Outcome:
    """
    Deliver ``event``; returns the receivers that still fail after ``policy.max_retries`` retries.

    ``already_handled`` (receiver ids from the inbox) are not called. ``record`` gets the
    receivers that succeeded after each attempt. ``wait`` sleeps before a retry (and may raise
    to abandon the message); ``prepare`` runs before each retry.
    """
    already_handled = set(already_handled)
    targets = (
        [WHOLE_SIGNAL]
        if not already_handled
        else [receiver for receiver in live_receivers(event.signal) if receiver_id(receiver) not in already_handled]
    )
    retry = 0
    while True:
        results = _attempt(event, targets)
        failed = [(target, result) for target, result in results if isinstance(result, BaseException)]
        if record:
            record(
                [
                    target
                    for target, result in results
                    if target is not WHOLE_SIGNAL and not isinstance(result, BaseException)
                ]
            )
        if not failed or retry >= policy.max_retries:
            return Outcome([(receiver_name(target), error) for target, error in failed], retry)
        retry += 1
        delay = policy.delay(retry)
        logger.warning(
            "%d receiver(s) failed for event_id=%s type=%s; retry %d of %d in %.2fs: %s",
            len(failed),
            event.metadata.id,
            event.metadata.event_type,
            retry,
            policy.max_retries,
            delay,
            ", ".join(receiver_name(target) for target, _ in failed),
        )
        wait(delay)
        prepare()
        targets = [target for target, _ in failed]


def _attempt(event, targets) -> list:
    """``[(receiver, response or exception)]`` for one pass over ``targets``."""
    results = []
    for target in targets:
        if target is WHOLE_SIGNAL:
            results.extend(_send(event))
        else:
            results.append((target, _call(target, event)))
    return results


@function_trace("emit_signals_from_message_send_event_with_custom_metadata")
def _send(event) -> list:
    try:
        return event.signal.send_event_with_custom_metadata(event.metadata, **event.data)
    except SenderValidationError as exc:
        # The data does not fit the signal: retrying cannot help.
        raise UnusableMessage("invalid_event_data", f"openedx-events rejected the data: {exc}") from exc
    except Exception as exc:
        logger.exception("Sending %s raised for event_id=%s", event.metadata.event_type, event.metadata.id)
        return [(WHOLE_SIGNAL, exc)]


def _call(receiver, event):
    """What Django's ``send_robust`` does for one receiver, with openedx-events' arguments."""
    kwargs = {**event.data, "metadata": event.metadata, SIGNAL_PROCESSED_FROM_EVENT_BUS: True}
    try:
        if iscoroutinefunction(receiver):
            return async_to_sync(receiver)(signal=event.signal, sender=None, **kwargs)
        return receiver(signal=event.signal, sender=None, **kwargs)
    except Exception as exc:
        logger.exception(
            "Receiver %s failed for event_id=%s type=%s",
            receiver_name(receiver),
            event.metadata.id,
            event.metadata.event_type,
        )
        return exc
