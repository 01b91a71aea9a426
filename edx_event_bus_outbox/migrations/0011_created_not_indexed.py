"""
``created`` loses its index (docs/decisions/0023-indexes-of-the-hot-table.rst): one index
entry fewer for every event written, and on PostgreSQL for every event marked sent.

Built for a table of millions of rows: dropping an index rewrites nothing. On PostgreSQL it is
``DROP INDEX CONCURRENTLY``, which waits for running transactions instead of queueing every
writer behind an exclusive lock; on MariaDB and MySQL an in-place ``ALTER`` with ``LOCK=NONE``.
"""

import django.utils.timezone
import model_utils.fields
from django.db import migrations

TABLE = "edx_event_bus_outbox_event"
RESTORED = "edx_event_bus_outbox_event_created_idx"  # the name a reverse migration gives it back


def _created_index(schema_editor):
    """The name Django gave ``created``'s index (``db_index=True``) in 0001, or None."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TABLE)
    return next((name for name, info in constraints.items() if info["index"] and info["columns"] == ["created"]), None)


def drop_index(apps, schema_editor):
    name, vendor = _created_index(schema_editor), schema_editor.connection.vendor
    if name is None:
        return
    if vendor == "mysql":
        schema_editor.execute(f"ALTER TABLE {TABLE} DROP INDEX {name}, ALGORITHM=INPLACE, LOCK=NONE")
    else:
        schema_editor.execute(f"DROP INDEX {'CONCURRENTLY ' if vendor == 'postgresql' else ''}IF EXISTS {name}")


def create_index(apps, schema_editor):
    if _created_index(schema_editor) is not None:
        return
    if schema_editor.connection.vendor == "mysql":
        schema_editor.execute(f"ALTER TABLE {TABLE} ADD INDEX {RESTORED} (created), ALGORITHM=INPLACE, LOCK=NONE")
    else:
        concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
        schema_editor.execute(f"CREATE INDEX {concurrently}{RESTORED} ON {TABLE} (created)")


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run in a transaction; MySQL cannot roll DDL back
    dependencies = [("edx_event_bus_outbox", "0010_lanes_of_a_topic")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="outboxevent",
                    name="created",
                    field=model_utils.fields.AutoCreatedField(
                        default=django.utils.timezone.now,
                        editable=False,
                        help_text="When send() wrote it; not indexed (ADR 23)",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_index, create_index)],
        ),
    ]
