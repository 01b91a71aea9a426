"""
CloudEvents headers <-> ``EventsMetadata``, exactly as edx-event-bus-kafka writes and reads them.

Header order matches edx-event-bus-kafka too, so that the messages are byte-identical.
"""
from collections import defaultdict
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


def version_tuple(dotted: str) -> tuple:
    """``"9.1.0"`` -> ``(9, 1, 0)``, the ``EventsMetadata.sourcelib`` form; the inverse of ``dotted_version``."""
    return tuple(map(int, dotted.split(".")))


# header name -> (EventsMetadata field, parser of the header string), in header order
METADATA_HEADERS = {
    "ce_type": ("event_type", str),
    "ce_id": ("id", UUID),
    "ce_source": ("source", str),
    "ce_time": ("time", datetime.fromisoformat),
    "ce_minorversion": ("minorversion", int),
    "sourcehost": ("sourcehost", str),
    "sourcelib": ("sourcelib", version_tuple),
}


class MessageHeaderError(OutboxError, ValueError):
    """The headers cannot be turned into ``EventsMetadata`` (missing id, duplicates, bad values)."""


def event_headers(*, event_type: str, event_id, source: str, time: datetime, minorversion: int,
                  sourcehost: str, sourcelib: str) -> list:
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
    return event_headers(event_type=metadata.event_type, event_id=metadata.id, source=metadata.source,
                         time=metadata.time, minorversion=metadata.minorversion, sourcehost=metadata.sourcehost,
                         sourcelib=dotted_version(metadata.sourcelib))


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
    for name, (field, from_header) in METADATA_HEADERS.items():
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
