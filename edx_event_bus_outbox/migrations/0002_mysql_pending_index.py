"""
MySQL and MariaDB ignore the partial index of 0001 (they have no partial indexes), which
would leave claiming as a full scan there. Give them a composite index that serves the
same query: ``WHERE status = 'pending' AND topic = %s ORDER BY id``.
"""

from django.db import migrations

INDEX = "outbox_status_lane_idx"
TABLE = "edx_event_bus_outbox_event"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "mysql":
        schema_editor.execute(f"CREATE INDEX {INDEX} ON {TABLE} (status, topic, id)")


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "mysql":
        schema_editor.execute(f"DROP INDEX {INDEX} ON {TABLE}")


class Migration(migrations.Migration):
    atomic = False  # MySQL cannot run DDL inside a transaction
    dependencies = [("edx_event_bus_outbox", "0001_initial")]
    operations = [migrations.RunPython(create_index, drop_index)]
