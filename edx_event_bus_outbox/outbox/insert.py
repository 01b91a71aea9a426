"""
One INSERT per event, prepared once per database vendor, that never breaks the caller (ADR 4).

``send()`` runs in every request that emits an event. ``Model.objects.create()`` compiles
its INSERT, instantiates the model and asks for the new id on every call; none of that is
needed here, and skipping it takes about a fifth off the write path. Values go through each
field's ``get_db_prep_save`` wherever it would change them, so UUIDs, JSON and datetimes are
stored exactly as the ORM would store them on each backend; the relay's bookkeeping columns,
which ``send()`` never sets, get their model defaults as literals in the SQL text. The
payload arrives as JSON text already (validation needed it), so it is not dumped twice.

A refused INSERT must leave the caller's transaction as it was, because openedx-events
swallows our exception and the caller carries on to COMMIT. MariaDB and SQLite undo only
the failed statement. PostgreSQL aborts the whole transaction, and its COMMIT then silently
becomes a ROLLBACK; so there, inside a transaction, the INSERT runs between a SAVEPOINT and
its RELEASE, sent as one query string: one round trip, as before.
"""

import uuid
from datetime import datetime
from functools import cache

from django.db import DatabaseError, IntegrityError, connections, models, transaction

from ..exceptions import DuplicateEventError, OutboxError, OutboxWriteError, TransactionLostError
from .models import OutboxEvent

# The relay's bookkeeping, which send() never sets: their defaults are written into the SQL
# text, once per database, rather than adapted and quoted as parameters for every event.
RELAY_COLUMNS = (
    *("status", "attempts", "last_error", "next_attempt_at"),
    *("failing_since", "sent_at", "partition", "offset"),
)
_COLUMNS = tuple(field for field in OutboxEvent._meta.concrete_fields if not field.primary_key)
FIELDS = tuple(field for field in _COLUMNS if field.attname not in RELAY_COLUMNS)  # the parameters, in order
SAVEPOINT = "edx_event_bus_outbox_insert"

# MariaDB error numbers after which InnoDB has rolled back the whole transaction, not just the
# statement: a deadlock, and the lost connection (server gone, lost during query, killed).
_MYSQL_TRANSACTION_LOST = {1213, 2006, 2013, 4031}
# A lock wait timeout undoes the statement only, unless innodb_rollback_on_timeout is on.
_MYSQL_LOCK_WAIT_TIMEOUT = 1205

# A str for a CharField, an int for an IntegerField: what get_db_prep_save returns for them on
# every backend is the value itself (str() and int() of it), so the call is skipped. Exact
# types: a bool is an int subclass, and a str subclass could carry behaviour of its own.
# Keyed by attname: a Field's own __hash__ is Python code.
_AS_IS_TYPE = {
    field.attname: str if isinstance(field, models.CharField) else int
    for field in FIELDS
    if isinstance(field, (models.CharField, models.IntegerField))
}
# PostgreSQL stores a UUID and an aware datetime as they are; elsewhere they become text.
_AS_IS_TYPE_POSTGRESQL = {
    **_AS_IS_TYPE,
    **{field.attname: uuid.UUID for field in FIELDS if isinstance(field, models.UUIDField)},
    **{field.attname: datetime for field in FIELDS if isinstance(field, models.DateTimeField)},
}

_SQL_BY_VENDOR = {}
_CONSTANTS_BY_VENDOR = {}


def insert_event(alias: str, payload_json: str, **values):
    """
    INSERT one outbox row on ``alias``; ``payload_json`` is the payload's JSON text.

    Raises ``DuplicateEventError``, ``OutboxWriteError`` (the caller's transaction is as it
    was before), or ``TransactionLostError`` (the database itself rolled it back).
    """
    connection = connections[alias]
    params = parameters(connection, payload_json, values)
    in_transaction = not connection.get_autocommit()
    guarded = in_transaction and connection.vendor == "postgresql"
    try:
        with connection.cursor() as cursor:
            execute(cursor, connection, guarded, params)
    except DatabaseError as exc:
        raise _refused(connection, alias, exc, guarded, in_transaction, values) from None


def parameters(connection, payload_json, values):
    """The INSERT's parameters, in ``FIELDS`` order (sets ``values["payload_size"]``); timed apart by the bench."""
    values["payload_size"] = len(payload_json)
    constants = _constant_defaults(connection)
    as_is = _AS_IS_TYPE_POSTGRESQL if connection.vendor == "postgresql" else _AS_IS_TYPE
    return [
        _json_param(connection, payload_json)
        if field.attname == "payload"
        else _param(field, values, constants, as_is, connection)
        for field in FIELDS
    ]


def _param(field, values, constants, as_is, connection):
    name = field.attname
    if name in values:
        value = values[name]
    elif name in constants:
        return constants[name]
    else:
        value = field.get_default()
    kind = as_is.get(name)
    if type(value) is kind and (kind is not datetime or value.tzinfo is not None):
        return value
    return field.get_db_prep_save(value, connection)


def _constant_defaults(connection):
    """
    The prepared defaults that never change, per vendor (of ``lane_count`` and ``lane_index``
    for a topic of one lane, say): preparing them again for every event was a fifth to a third
    of the parameters' cost. Callable defaults (``created``) are still prepared for each event.
    """
    constants = _CONSTANTS_BY_VENDOR.get(connection.vendor)
    if constants is None:
        constants = _CONSTANTS_BY_VENDOR[connection.vendor] = {
            field.attname: field.get_db_prep_save(field.get_default(), connection)
            for field in _COLUMNS
            if not (field.has_default() and callable(field.default))
        }
    return constants


def execute(cursor, connection, guarded, params):
    """The INSERT itself; ``guarded`` wraps it in a savepoint (PostgreSQL, in a transaction)."""
    sql = _insert_sql(connection)
    if not guarded:
        cursor.execute(sql, params)
    elif _one_query_string(connection):
        cursor.execute(f"SAVEPOINT {SAVEPOINT}; {sql}; RELEASE SAVEPOINT {SAVEPOINT}", params)
    else:  # server-side binding cannot take several statements: two more round trips
        cursor.execute(f"SAVEPOINT {SAVEPOINT}")
        cursor.execute(sql, params)
        cursor.execute(f"RELEASE SAVEPOINT {SAVEPOINT}")


def _refused(connection, alias, exc, guarded, in_transaction, values):
    """Put the caller's transaction back, and the typed error that says what became of it."""
    lost = in_transaction and not _restore(connection, exc, guarded)
    describe = dict(
        event_id=values["event_id"], event_type=values["event_type"], topic=values["topic"], cause=_cause(exc)
    )
    if lost:
        if connection.in_atomic_block and connection.is_usable():
            # Refuse the rest of the caller's atomic block rather than let its later statements
            # commit in a new transaction without what came before. (A dead connection needs
            # nothing: the caller's COMMIT will raise.)
            transaction.set_rollback(True, using=alias)
        return TransactionLostError(**describe)
    if (
        isinstance(exc, IntegrityError)
        and OutboxEvent.objects.using(alias).filter(event_id=values["event_id"], topic=values["topic"]).exists()
    ):
        return DuplicateEventError(**describe)
    return OutboxWriteError(**describe)


def _restore(connection, exc, guarded) -> bool:
    """Whether the caller's transaction is still there after the failed INSERT."""
    if guarded:
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
                cursor.execute(f"RELEASE SAVEPOINT {SAVEPOINT}")
        except DatabaseError:
            return False
        return True
    if connection.vendor == "sqlite":
        return connection.connection is not None and connection.connection.in_transaction
    if connection.vendor == "mysql":
        errno = exc.args[0] if exc.args else None
        if errno == _MYSQL_LOCK_WAIT_TIMEOUT:
            return not _mysql_rolls_back_on_timeout(connection)
        return errno not in _MYSQL_TRANSACTION_LOST
    return True


def _mysql_rolls_back_on_timeout(connection) -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@innodb_rollback_on_timeout")
            return bool(cursor.fetchone()[0])
    except DatabaseError:
        return True


def _cause(exc) -> str:
    """The error's class and code, never its text: databases quote the failing row in it."""
    original = exc.__cause__
    code = (
        getattr(original, "sqlstate", None)
        or getattr(original, "pgcode", None)
        or getattr(original, "sqlite_errorname", None)
        or (exc.args[0] if exc.args and isinstance(exc.args[0], int) else None)
    )
    return f"{type(exc).__name__} {code}" if code else type(exc).__name__


def _one_query_string(connection) -> bool:
    """Client-side binding (Django's default) lets one execute() carry several statements."""
    return not connection.settings_dict.get("OPTIONS", {}).get("server_side_binding")


def _json_param(connection, text):
    """The JSON text as the parameter Django's ``JSONField`` would have made of the value."""
    if connection.vendor == "postgresql":
        return _postgresql_jsonb()(text, dumps=_as_is)
    return text


@cache
def _postgresql_jsonb():
    from django.db.backends.postgresql.psycopg_any import Jsonb  # needs psycopg, which only PostgreSQL does

    return Jsonb


def _as_is(text):
    return text


def _insert_sql(connection) -> str:
    sql = _SQL_BY_VENDOR.get(connection.vendor)
    if sql is None:
        quote, constants = connection.ops.quote_name, _constant_defaults(connection)
        relay = [field for field in _COLUMNS if field.attname in RELAY_COLUMNS]
        columns = ", ".join(quote(field.column) for field in (*FIELDS, *relay))
        values = ", ".join(["%s"] * len(FIELDS) + [_literal(constants[field.attname]) for field in relay])
        sql = _SQL_BY_VENDOR[connection.vendor] = (
            f"INSERT INTO {quote(OutboxEvent._meta.db_table)} ({columns}) VALUES ({values})"
        )
    return sql


def _literal(value) -> str:
    """A relay column's prepared default as SQL: NULL, an integer, or a plain word such as 'pending'."""
    if value is None:
        return "NULL"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, str) and (value == "" or value.isalnum()):
        return f"'{value}'"
    raise OutboxError(f"No SQL literal for the default {value!r}: take its column out of RELAY_COLUMNS.")
