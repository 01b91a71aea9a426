"""
CloudEvents headers <-> ``EventsMetadata``, exactly as edx-event-bus-kafka writes and reads them.

Header order matches edx-event-bus-kafka too, so that the messages are byte-identical.
"""
from collections import defaultdict
from datetime import datetime
from uuid import UUID

from openedx_events.data import EventsMetadata

CONSTANT_HEADERS = (
    ("ce_specversion", b"1.0"),
    ("content-type", b"application/avro"),
    ("ce_datacontenttype", b"application/avro"),
)

# header name -> (EventsMetadata field, to header string, from header string)
METADATA_HEADERS = {
    "ce_type": ("event_type", str, str),
    "ce_id": ("id", str, UUID),
    "ce_source": ("source", str, str),
    "ce_time": ("time", datetime.isoformat, datetime.fromisoformat),
    "ce_minorversion": ("minorversion", str, int),
    "sourcehost": ("sourcehost", str, str),
    "sourcelib": ("sourcelib", lambda lib: ".".join(map(str, lib)), lambda s: tuple(map(int, s.split(".")))),
}


class MessageHeaderError(ValueError):
    """The headers cannot be turned into ``EventsMetadata`` (missing id, duplicates, bad values)."""


def headers_from_metadata(metadata: EventsMetadata) -> list:
    """The message headers for an event, as ``(name, bytes)`` pairs."""
    headers = list(CONSTANT_HEADERS)
    for name, (field, to_header, _) in METADATA_HEADERS.items():
        headers.append((name, to_header(getattr(metadata, field)).encode("utf-8")))
    return headers


def header_values(headers, name: str) -> list:
    """All values of one header, decoded."""
    return [value.decode("utf-8") for key, value in (headers or []) if key == name]


def metadata_from_headers(headers) -> EventsMetadata:
    """
    Rebuild ``EventsMetadata``. ``ce_id`` is required; other missing headers take defaults.

    Raises ``MessageHeaderError`` naming the header at fault.
    """
    values = defaultdict(list)
    for key, value in headers or []:
        values[key].append(value)
    kwargs = {}
    for name, (field, _, from_header) in METADATA_HEADERS.items():
        found = values.get(name, [])
        if len(found) > 1:
            raise MessageHeaderError(f"message has {len(found)} {name!r} headers; expected one")
        if not found:
            if name == "ce_id":
                raise MessageHeaderError("message has no 'ce_id' header; cannot identify the event")
            continue
        try:
            kwargs[field] = from_header(found[0].decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise MessageHeaderError(f"header {name!r} is not valid: {exc}") from exc
    return EventsMetadata(**kwargs)
