"""
On PostgreSQL, NOTIFY the relay when rows are inserted, so an idle relay wakes at once.

A statement-level trigger costs the request no extra round trip. PostgreSQL folds identical
notifications of one transaction into one, and delivers them only at commit, so a rolled
back insert never wakes anybody. Other databases skip this; their relays poll.
"""

from django.db import migrations

FUNCTION = "edx_event_bus_outbox_notify"
TABLE = "edx_event_bus_outbox_event"


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN PERFORM pg_notify('edx_event_bus_outbox', ''); RETURN NULL; END; $$"
    )
    schema_editor.execute(
        f"CREATE TRIGGER {FUNCTION} AFTER INSERT ON {TABLE} FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
    )


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {FUNCTION} ON {TABLE}")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")


class Migration(migrations.Migration):
    dependencies = [("edx_event_bus_outbox", "0003_relay_lease")]
    operations = [migrations.RunPython(create_trigger, drop_trigger)]
