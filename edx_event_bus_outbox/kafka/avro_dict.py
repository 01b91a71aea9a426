"""
``to_avro_dict``: what openedx-events' ``AvroSignalSerializer.to_dict`` returns, about three times faster.

``to_dict`` runs in every ``send()``. It walks the event's attrs data with ``attr.asdict`` and
a hook that, for every value, tries each custom serializer in turn: an ``issubclass`` of the
field's declared type and one of the value's type per serializer, many of them through
``abc``. That search was about two thirds of the call. Which serializer it finds depends on
those two types alone, so this runs the same algorithm with the choice remembered per pair of
types; the rest (``asdict``'s recursion, the JSON round trip that sorts keys and turns tuples
into lists) is the same code (ADR 19).

The first event of each signal in a process is also given to openedx-events' own ``to_dict``.
If the two results differ, a newer openedx-events has changed its rules: that signal then
uses openedx-events' ``to_dict`` for the rest of the process, and a WARNING says so.
"""

import json
import logging
from functools import cache

import attr
from openedx_events.event_bus.avro.serializer import DEFAULT_SERIALIZERS

from ..exceptions import OutboxError
from .schemas import signal_serializer

logger = logging.getLogger(__name__)


class NoneWithoutDefault(OutboxError, TypeError):
    """A field without ``default=None`` holds ``None``; openedx-events refuses it the same way."""


def to_avro_dict(signal, event_data) -> dict:
    """The Avro-ready dict of ``event_data``, equal to ``signal_serializer(signal).to_dict(event_data)``."""
    return _converter(signal)(event_data)


class _Converter:
    """``to_dict`` for one signal, checked against openedx-events' on its first event."""

    def __init__(self, signal):
        serializer = signal_serializer(signal)
        self.signal = signal
        self.upstream = serializer.to_dict
        self.serializers = {**DEFAULT_SERIALIZERS, **serializer.serializers}
        self.chosen = {}  # (declared type, value type) -> serializer, or None for "as it is"
        self.convert = self._first  # then ours, or openedx-events' if the first event showed a difference

    def __call__(self, event_data):
        return self.convert(event_data)

    def _ours(self, event_data):
        return json.loads(json.dumps(event_data, sort_keys=True, default=self._value_to_dict))

    def _first(self, event_data):
        ours = self._ours(event_data)
        theirs = self.upstream(event_data)
        if ours == theirs:
            self.convert = self._ours
        else:
            self.convert = self.upstream
            logger.warning(
                "Signal %s: this openedx-events serializes event data differently from the outbox's faster "
                "to_dict; the outbox uses openedx-events' own to_dict for this signal from now on (ADR 19).",
                self.signal.event_type,
            )
        return theirs

    def _value_to_dict(self, value):
        if hasattr(value, "__attrs_attrs__"):
            return attr.asdict(value, value_serializer=self._serialize_value)
        return self._serialize_value(None, None, value)

    def _serialize_value(self, _inst, field, value):  # attrs passes the instance first
        if value is None:
            # All default=None fields are implicitly nullable in the schema (openedx-events ADR 7).
            if field.default is None:
                return None
            raise NoneWithoutDefault("None cannot be handled by custom serializers (and default=None was not set)")
        types = (field.type if field else None, type(value))
        try:
            serializer = self.chosen[types]
        except KeyError:
            serializer = self.chosen[types] = self._choose(*types)
        except TypeError:  # an unhashable declared type, such as some typing constructs
            serializer = self._choose(*types)
        return value if serializer is None else serializer(value)

    def _choose(self, declared_type, value_type):
        """openedx-events' search: the first serializer whose class either type derives from."""
        for extended_class, serializer in self.serializers.items():
            if isinstance(declared_type, type) and issubclass(declared_type, extended_class):
                return serializer
            if issubclass(value_type, extended_class):
                return serializer
        return None


@cache
def _converter(signal) -> _Converter:
    return _Converter(signal)
