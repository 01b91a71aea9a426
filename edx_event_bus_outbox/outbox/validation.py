"""
Check an event against its signal's Avro schema before it is stored.

The happy path is one fastavro ``validate`` call per payload and key. Only when that fails do
we walk the schema to name the offending field by its path in the event data
(``user.pii.email``), since fastavro names the Avro type, not the path.
"""
from functools import lru_cache

import attr
import fastavro
from fastavro.schema import expand_schema
from fastavro.validation import validate

from ..kafka.schemas import key_schema, signal_serializer


@lru_cache(maxsize=None)
def parsed_value_schema(signal):
    return fastavro.parse_schema(signal_serializer(signal).schema)


@lru_cache(maxsize=None)
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
    return event_key_field, f"is {key!r}, which does not match the key schema {key_schema(signal, event_key_field)['type']!r}"


def _first_problem(schema, datum, path):
    """Depth-first search for the first field whose value breaks the schema."""
    avro_type = schema["type"] if isinstance(schema, dict) else schema
    if isinstance(avro_type, dict):
        return _first_problem(avro_type, datum, path)
    if avro_type == "record":
        if not isinstance(datum, dict):
            return path or "(event)", f"is {type(datum).__name__}, expected a record"
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
    return path, f"is {datum!r} ({type(datum).__name__}), expected Avro {_describe(schema)}"


def _describe(schema):
    if isinstance(schema, list):
        return " or ".join(_describe(branch) for branch in schema)
    if isinstance(schema, dict):
        return schema.get("name") or schema["type"]
    return schema


def none_without_default(data, path=""):
    """
    Locate a ``None`` in an attrs field that has no ``default=None``.

    ``AvroSignalSerializer.to_dict`` fails on these with a message that names no field; this
    finds it, so our error can.
    """
    if attr.has(type(data)):
        for field in attr.fields(type(data)):
            value = getattr(data, field.name)
            field_path = f"{path}.{field.name}" if path else field.name
            if value is None and field.default is not None:
                return field_path
            found = none_without_default(value, field_path)
            if found:
                return found
    elif isinstance(data, dict):
        for name, value in data.items():
            found = none_without_default(value, f"{path}.{name}" if path else str(name))
            if found:
                return found
    elif isinstance(data, (list, tuple)):
        for index, value in enumerate(data):
            found = none_without_default(value, f"{path}[{index}]")
            if found:
                return found
    return None
