"""
Check an event before it is stored: everything that can be known before the INSERT (ADR 4).

* Its signal's Avro schema: one fastavro ``validate`` call per payload and key.
* What a database cannot store: NUL characters (PostgreSQL), lone surrogates (not Unicode;
  PostgreSQL refuses them, the relay could not encode them), NaN and infinities (not JSON;
  every database's JSON check refuses them), and metadata longer than its column.
* The size limit, ``EVENT_BUS_OUTBOX_MAX_EVENT_BYTES``.

The happy path pays one ``json.dumps``, which replaces the one Django's ``JSONField`` would
make for the INSERT, and a few substring tests on its text. Only when a check fails do we
walk the data to name the offending field by its path (``user.pii.email``). Problems name
the field and what is wrong with it, never its value: openedx-events logs them at ERROR, and
values may be PII.
"""

import json
import math
from functools import cache

import attr
import fastavro
from fastavro.schema import expand_schema
from fastavro.validation import validate

from .. import conf
from ..kafka.schemas import key_schema, parsed_value_schema, signal_serializer
from .models import OutboxEvent

# A NUL is always escaped as \u0000 by json.dumps, and with ensure_ascii every surrogate as
# \udXXX (lower case). Either substring in the text sends us to the exact check; emoji (a
# valid surrogate pair in JSON) or a literal backslash can match too and are then let through.
_SUSPECT_ESCAPES = ("\\u0000", "\\ud")

# Made once: json.dumps with any non-default option builds a new encoder on every call.
_JSON = json.JSONEncoder(allow_nan=False, separators=(",", ":"))

# What the relay's Kafka message adds to the Avro key and value, at most: the Confluent
# framing of both (2 x 5 bytes), the CloudEvents headers (names, and values bounded by the
# outbox columns they come from) and librdkafka's per-record overhead.
_MESSAGE_OVERHEAD_BYTES = 4096
# Avro's binary encoding of any value takes at most 3 bytes per character of its compact JSON
# (the worst case is 0.0 in a nullable double: 3 characters, 9 bytes); the key is also part of
# the payload, so 6 bounds key and value together.
_AVRO_BYTES_PER_JSON_CHAR = 6
# librdkafka's allowance for one record's own framing (lengths, timestamps, header counts).
_RECORD_OVERHEAD_BYTES = 256

# The outbox's text columns that send() fills from the metadata and the configuration.
_TEXT_COLUMNS = tuple(
    OutboxEvent._meta.get_field(name)
    for name in ("event_type", "topic", "event_key_field", "source", "sourcehost", "sourcelib")
)


@cache
def parsed_key_schema(signal, event_key_field):
    return fastavro.parse_schema(key_schema(signal, event_key_field))


def payload_problem(signal, payload):
    """``None`` when the payload is valid, else ``(field_path, problem)``."""
    if validate(payload, parsed_value_schema(signal), raise_errors=False):
        return None
    return _first_problem(expand_schema(signal_serializer(signal).schema), payload, "") or ("(event)", "is invalid")


def key_problem(signal, event_key_field, key):
    if validate(key, parsed_key_schema(signal, event_key_field), raise_errors=False):
        return None
    return event_key_field, (
        f"is a {type(key).__name__}, which does not match the key schema "
        f"{_describe(key_schema(signal, event_key_field)['type'])!r}"
    )


def payload_json(payload):
    """
    ``(text, None)``: the payload as the JSON text the outbox stores; or ``(None, (field, problem))``.
    """
    try:
        text = _JSON.encode(payload)
    except ValueError:
        return None, (
            _first_path(payload, _not_finite) or "(event)",
            "is not a finite number (NaN or infinity), which JSON and so the outbox cannot hold",
        )
    if any(escape in text for escape in _SUSPECT_ESCAPES):
        problem = _unstorable_string(payload)
        if problem:
            return None, problem
    return text, None


def metadata_problem(values):
    """``(column, problem)`` for the first outbox text column whose value the database would refuse."""
    for field in _TEXT_COLUMNS:
        value = values[field.attname]
        if len(value) > field.max_length:
            return field.attname, f"is {len(value)} characters long, more than its column's {field.max_length}"
        if not value.isascii() or "\x00" in value:
            problem = _string_problem(value)
            if problem:
                return field.attname, problem
    return None


def size_problem(signal, event_key_field, payload, event_key, text, headers):
    """
    ``(field, problem)`` when the Kafka message of this event would exceed the size limit.

    The measure is what librdkafka compares with its ``message.max.bytes``: the framed Avro
    key and value plus the headers. Most events are far below the limit, which the length of
    the JSON text alone proves; only large ones are Avro-encoded to be measured exactly.
    """
    limit = conf.max_event_bytes()
    if len(text) * _AVRO_BYTES_PER_JSON_CHAR + _MESSAGE_OVERHEAD_BYTES <= limit:
        return None
    size = (
        _avro_size(parsed_value_schema(signal), payload)
        + _avro_size(parsed_key_schema(signal, event_key_field), event_key)
        + 10
        + sum(len(name) + len(value) for name, value in headers())
    )
    if size + _RECORD_OVERHEAD_BYTES <= limit:
        return None
    return "(event)", (
        f"makes a Kafka message of about {size + _RECORD_OVERHEAD_BYTES} bytes, more than "
        f"EVENT_BUS_OUTBOX_MAX_EVENT_BYTES = {limit}"
    )


class _CountingSink:
    """A file-like object that only counts what fastavro writes into it."""

    def __init__(self):
        self.size = 0

    def write(self, data):
        self.size += len(data)


def _avro_size(schema, datum):
    sink = _CountingSink()
    fastavro.schemaless_writer(sink, schema, datum)
    return sink.size


def _string_problem(value):
    if "\x00" in value:
        return "contains a NUL character, which PostgreSQL cannot store"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (U+D800 to U+DFFF), which is not valid Unicode"
    return None


def _unstorable_string(datum, path=""):
    """``(field_path, problem)`` for the first string (value or map key) a database cannot store."""
    if isinstance(datum, str):
        problem = _string_problem(datum)
        return (path or "(event)", problem) if problem else None
    if isinstance(datum, dict):
        for name in datum:
            problem = _string_problem(name) if isinstance(name, str) else None
            if problem:
                return f"{path or '(event)'} (a map key)", problem
    for child_path, value in _children(datum, path):
        found = _unstorable_string(value, child_path)
        if found:
            return found
    return None


def _not_finite(datum):
    return isinstance(datum, float) and not math.isfinite(datum)


def _first_path(datum, predicate, path=""):
    """The path of the first value in nested dicts and lists for which ``predicate`` holds."""
    if predicate(datum):
        return path or "(event)"
    for child_path, value in _children(datum, path):
        found = _first_path(value, predicate, child_path)
        if found:
            return found
    return None


def _children(datum, path):
    """``(path, value)`` of the items of a dict (``a.b``) or a list (``a[0]``); nothing for a scalar."""
    if isinstance(datum, dict):
        return ((f"{path}.{name}" if path else str(name), value) for name, value in datum.items())
    if isinstance(datum, (list, tuple)):
        return ((f"{path}[{index}]", value) for index, value in enumerate(datum))
    return ()


def _first_problem(schema, datum, path):
    """Depth-first search for the first field whose value breaks the schema."""
    avro_type = schema["type"] if isinstance(schema, dict) else schema
    if isinstance(avro_type, dict):
        return _first_problem(avro_type, datum, path)
    if avro_type == "record":
        if not isinstance(datum, dict):
            return path or "(event)", f"is a {type(datum).__name__}, expected a record"
        for field in schema["fields"]:
            field_path = f"{path}.{field['name']}" if path else field["name"]
            if field["name"] not in datum and "default" not in field:
                return field_path, "is missing and has no default"
            problem = _first_problem(field["type"], datum.get(field["name"], field.get("default")), field_path)
            if problem:
                return problem
        return None
    if validate(datum, schema, raise_errors=False):
        return None
    if datum is None:
        return path, "is None, which the schema does not allow"
    return path, f"is a {type(datum).__name__}, expected Avro {_describe(schema)}"


def _describe(schema):
    if isinstance(schema, list):
        return " or ".join(_describe(branch) for branch in schema)
    if isinstance(schema, dict):
        return schema.get("name") or schema["type"]
    return schema


def unserializable_field(data, path=""):
    """
    Locate the attrs field ``AvroSignalSerializer.to_dict`` fails on: a ``None`` where the field
    has no ``default=None``, or a value that is not of the field's declared class.

    ``to_dict`` fails on these with a message that names no field (and may quote the value);
    this finds the field, so our error can name it instead.
    """
    if attr.has(type(data)):
        for field in attr.fields(type(data)):
            value = getattr(data, field.name)
            field_path = f"{path}.{field.name}" if path else field.name
            if value is None:
                if field.default is not None:
                    return field_path
                continue
            if isinstance(field.type, type) and not isinstance(value, field.type):
                return field_path
            found = unserializable_field(value, field_path)
            if found:
                return found
    elif isinstance(data, dict):
        for name, value in data.items():
            found = unserializable_field(value, f"{path}.{name}" if path else str(name))
            if found:
                return found
    elif isinstance(data, (list, tuple)):
        for index, value in enumerate(data):
            found = unserializable_field(value, f"{path}[{index}]")
            if found:
                return found
    return None
