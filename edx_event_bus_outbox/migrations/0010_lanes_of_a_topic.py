"""
A topic can be split into lanes (docs/decisions/0022-topics-split-into-lanes.rst): every row
gets its lane, ``lane_count`` and ``lane_index`` (1 and 0 for every existing row), and the
pending index that claims a lane's rows gains both columns.

Built for a table of millions of rows: the columns are added with a constant default, which
PostgreSQL 11+ and MariaDB 10.3+ record without rewriting the table. The new pending index is
built before the old one is dropped, so claiming always has one: ``CONCURRENTLY`` on PostgreSQL
(writers go on; it reads the table once, and holds only pending rows), ``LOCK=NONE`` on MariaDB
and MySQL. SQLite copies the table to add the columns, as Django always does there.
"""

from django.db import migrations, models
from django.db.models import Q

TABLE = "edx_event_bus_outbox_event"
OLD_COLUMNS, NEW_COLUMNS = ["topic", "id"], ["topic", "lane_count", "lane_index", "id"]
# PostgreSQL and SQLite: partial, on the pending rows. MySQL/MariaDB have no partial indexes: there
# Django made the "pending" index a full one, and 0002 added (status, ...) as the claim's stand-in.
OLD_PENDING, NEW_PENDING = "outbox_pending_lane_idx", "outbox_pending_lanes_idx"
OLD_MYSQL, NEW_MYSQL = "outbox_status_lane_idx", "outbox_status_lanes_idx"


def _swap(schema_editor, columns, old, new, mysql_old, mysql_new):
    """Build the new indexes before the old ones go, so claiming always has one, without stopping writers."""
    vendor, listed = schema_editor.connection.vendor, ", ".join(columns)
    if vendor == "mysql":
        schema_editor.execute(
            f"ALTER TABLE {TABLE} ADD INDEX {new} ({listed}), ADD INDEX {mysql_new} (status, {listed}), "
            "ALGORITHM=INPLACE, LOCK=NONE"
        )
        schema_editor.execute(f"ALTER TABLE {TABLE} DROP INDEX {old}, DROP INDEX {mysql_old}")
        return
    concurrently = "CONCURRENTLY " if vendor == "postgresql" else ""
    schema_editor.execute(
        f"CREATE INDEX {concurrently}IF NOT EXISTS {new} ON {TABLE} ({listed}) WHERE status = 'pending'"
    )
    schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {old}")


def forwards(apps, schema_editor):
    _swap(schema_editor, NEW_COLUMNS, OLD_PENDING, NEW_PENDING, OLD_MYSQL, NEW_MYSQL)


def backwards(apps, schema_editor):
    _swap(schema_editor, OLD_COLUMNS, NEW_PENDING, OLD_PENDING, NEW_MYSQL, OLD_MYSQL)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction; MySQL cannot roll DDL back
    dependencies = [("edx_event_bus_outbox", "0009_relay_presence")]

    operations = [
        migrations.AddField(
            model_name="outboxevent",
            name="lane_count",
            field=models.PositiveSmallIntegerField(default=1, help_text="Lanes its topic had when it was written"),
        ),
        migrations.AddField(
            model_name="outboxevent",
            name="lane_index",
            field=models.PositiveSmallIntegerField(default=0, help_text="Its lane: its key's hash modulo lane_count"),
        ),
        migrations.AlterField(
            model_name="outboxevent",
            name="topic",
            field=models.CharField(help_text="Un-prefixed topic", max_length=255),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="outboxevent", name=OLD_PENDING),
                migrations.AddIndex(
                    model_name="outboxevent",
                    index=models.Index(
                        fields=NEW_COLUMNS,
                        condition=Q(status="pending"),
                        name=NEW_PENDING,
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
