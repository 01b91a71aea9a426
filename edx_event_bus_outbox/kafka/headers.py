"""
CloudEvents headers <-> ``EventsMetadata``, exactly as edx-event-bus-kafka writes and reads them.

Header order matches edx-event-bus-kafka too, so that the messages are byte-identical.
"""

import re
from datetime import datetime
from uuid import UUID

from openedx_events.data import EventsMetadata

from ..exceptions import OutboxError

CONSTANT_HEADERS = (
    ("ce_specversion", b"1.0"),
    ("content-type", b"application/avro"),
    ("ce_datacontenttype", b"application/avro"),
)


def dotted_version(sourcelib: tuple) -> str:
    """``(9, 1, 0)`` -> ``"9.1.0"``, as the ``sourcelib`` header and the outbox row carry it."""
    return ".".join(map(str, sourcelib))


class HeaderValueError(OutboxError, ValueError):
    """A header's text is not of the form the wire format writes; the text says which form."""


def version_tuple(dotted: str) -> tuple:
    """
    ``"9.1.0"`` -> ``(9, 1, 0)``, the ``EventsMetadata.sourcelib`` form; the inverse of ``dotted_version``.

    Only ASCII digits and single dots (``int`` alone would take ``" 9"``, ``"-1"`` or Arabic-Indic digits).
    """
    if not _VERSION.fullmatch(dotted):
        raise HeaderValueError("expected a version of dot-separated ASCII digits, like 9.1.0")
    return tuple(map(int, dotted.split(".")))


# The exact forms the wire format writes, in ASCII ([0-9], not \d, which takes any script's digits).
_VERSION = re.compile(r"[0-9]+(\.[0-9]+)*")
_NATURAL = re.compile(r"[0-9]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# datetime.isoformat() of an aware UTC time; RFC 3339's "Z" too. fromisoformat alone takes naive times.
_UTC_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(\+00:00|Z)")


def _uuid(text: str) -> UUID:
    if not _UUID.fullmatch(text):
        raise HeaderValueError("expected a UUID in its 8-4-4-4-12 hexadecimal form")
    return UUID(text)


def _utc_time(text: str) -> datetime:
    if not _UTC_TIME.fullmatch(text):
        raise HeaderValueError("expected an ISO 8601 time in UTC, like 2026-01-01T00:00:00.000000+00:00")
    return datetime.fromisoformat(text)  # still refuses month 13 and the like


def _natural(text: str) -> int:
    if not _NATURAL.fullmatch(text):
        raise HeaderValueError("expected a non-negative integer in ASCII digits")
    return int(text)


def _any_text(text: str) -> str:
    return text


# header name -> (EventsMetadata field, parser of the header string), in header order
METADATA_HEADERS = {
    "ce_type": ("event_type", _any_text),
    "ce_id": ("id", _uuid),
    "ce_source": ("source", _any_text),
    "ce_time": ("time", _utc_time),
    "ce_minorversion": ("minorversion", _natural),
    "sourcehost": ("sourcehost", _any_text),
    "sourcelib": ("sourcelib", version_tuple),
}
# Every header the wire format writes is required, exactly once: a consumer that filled in a
# missing one would invent its value (this service's name as the source, the time of reading...).
REQUIRED_HEADERS = (*(name for name, _ in CONSTANT_HEADERS), *METADATA_HEADERS)
_IS_REQUIRED = frozenset(REQUIRED_HEADERS)


class MessageHeaderError(OutboxError, ValueError):
    """
    The headers cannot be turned into ``EventsMetadata``. ``header`` names the header at fault,
    ``problem`` is one of missing, duplicated, null, not_utf8, empty, invalid, unreadable. The text never
    quotes a header's value.
    """

    def __init__(self, header: str, problem: str, detail: str):
        self.header = header
        self.problem = problem
        super().__init__(f"header {header!r} is {problem.replace('_', ' ')}: {detail}")


def event_headers(
    *, event_type: str, event_id, source: str, time: datetime, minorversion: int, sourcehost: str, sourcelib: str
) -> list:
    """
    The message headers for an event, as ``(name, bytes)`` pairs, from the metadata's values.

    The relay calls this with an outbox row's columns, skipping ``EventsMetadata``, whose
    construction and validation cost as much as the headers themselves.
    """
    return [
        *CONSTANT_HEADERS,
        ("ce_type", event_type.encode("utf-8")),
        ("ce_id", str(event_id).encode("utf-8")),
        ("ce_source", source.encode("utf-8")),
        ("ce_time", time.isoformat().encode("utf-8")),
        ("ce_minorversion", str(minorversion).encode("utf-8")),
        ("sourcehost", sourcehost.encode("utf-8")),
        ("sourcelib", sourcelib.encode("utf-8")),
    ]


def headers_from_metadata(metadata: EventsMetadata) -> list:
    """The message headers for an event, as ``(name, bytes)`` pairs."""
    return event_headers(
        event_type=metadata.event_type,
        event_id=metadata.id,
        source=metadata.source,
        time=metadata.time,
        minorversion=metadata.minorversion,
        sourcehost=metadata.sourcehost,
        sourcelib=dotted_version(metadata.sourcelib),
    )


def header_values(headers, name: str) -> list:
    """All values of one header, decoded."""
    return [value.decode("utf-8") for key, value in (headers or []) if key == name]


class LastMessageCache:
    """What was computed from the last message, handed out again while it is the one asked about."""

    def __init__(self, compute):
        self.compute = compute
        self.entry = (None, None)  # (message, value): one tuple, so that threads read a consistent pair

    def __call__(self, msg):
        last_msg, value = self.entry
        if last_msg is msg:
            return value
        value = self.compute(msg)
        self.entry = (msg, value)
        return value


def _read_headers(msg) -> list:
    try:
        return msg.headers() or []
    except Exception as exc:  # noqa: BLE001  a message object that cannot list its headers is unusable
        raise MessageHeaderError(
            "(names)", "unreadable", f"confluent-kafka cannot read them ({type(exc).__name__})"
        ) from None


# ``msg.headers()``, which confluent-kafka decodes as it is called: a header *name* that is not
# UTF-8 (no Python client can write one, other clients can) raises there, not at our checks.
# The consumer needs one message's headers three times (monitoring, decoding, the audit line)
# and confluent-kafka builds a new list on every call, so the last message's list is handed out
# again: callers must not change it.
message_headers = LastMessageCache(_read_headers)


def _text(name: str, raw) -> str:
    """A header's value as text; null, not UTF-8 and empty are refused."""
    if raw is None:
        raise MessageHeaderError(name, "null", "the header has no value")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MessageHeaderError(name, "not_utf8", "CloudEvents header values are UTF-8") from None
    if not text:
        raise MessageHeaderError(name, "empty", "the header has an empty value")
    return text


# Headers whose values repeat from message to message (one service, one openedx-events): each
# distinct value is checked and parsed once. Bounded, for a topic written by many services.
_REPEATING = frozenset(("ce_type", "ce_source", "ce_minorversion", "sourcehost", "sourcelib"))
_PARSED_REPEATING = {}
_PARSED_REPEATING_MAX = 1024


def _parse(name, from_header, raw):
    text = _text(name, raw)
    try:
        parsed = from_header(text)
    except ValueError as exc:
        raise MessageHeaderError(name, "invalid", str(exc)) from None
    if name in _REPEATING:
        if len(_PARSED_REPEATING) >= _PARSED_REPEATING_MAX:
            _PARSED_REPEATING.clear()
        _PARSED_REPEATING[(name, raw)] = parsed
    return parsed


def metadata_from_headers(headers) -> EventsMetadata:
    """
    Rebuild ``EventsMetadata`` from the headers, strictly: every header of the wire format once,
    in the form the wire format writes it. Raises ``MessageHeaderError``, never anything else.
    """
    raw = {}
    for key, value in headers:
        if key in _IS_REQUIRED:
            if key in raw:
                raise MessageHeaderError(key, "duplicated", "the message has more than one; expected one")
            raw[key] = value
    if len(raw) < len(REQUIRED_HEADERS):
        missing = next(name for name in REQUIRED_HEADERS if name not in raw)
        raise MessageHeaderError(missing, "missing", "every CloudEvents header of the wire format is required")
    for name, expected in CONSTANT_HEADERS:
        if raw[name] != expected:  # the bytes themselves: these are compared on every message
            _text(name, raw[name])
            raise MessageHeaderError(name, "invalid", f"expected {expected.decode()!r}")
    kwargs = {}
    for name, (field, from_header) in METADATA_HEADERS.items():
        parsed = _PARSED_REPEATING.get((name, raw[name]))
        if parsed is None:
            parsed = _parse(name, from_header, raw[name])
        kwargs[field] = parsed
    try:
        return EventsMetadata(**kwargs)
    except (TypeError, ValueError) as exc:  # openedx-events' own checks, should they grow stricter
        raise MessageHeaderError(
            "ce_*", "invalid", f"openedx-events refused the metadata ({type(exc).__name__})"
        ) from None
