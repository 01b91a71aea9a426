"""
A relay says in its presence row when it found nothing and may be asleep, and on PostgreSQL
the insert trigger sends its NOTIFY only then, asking at commit (ADR 24).

NOTIFY takes a database-wide lock at commit that serializes every notifying commit, so a
writer that wakes nobody should not send one. The column keeps a database default so that
relays of the previous release, still running during a rolling upgrade, can announce
themselves; they are never woken, and poll (at most ``EVENT_BUS_OUTBOX_RELAY_POLL_INTERVAL``).

Replacing the trigger locks the outbox table for an instant; ``lock_timeout`` makes the
migration fail, to be run again, rather than queue every writer behind a long transaction.
"""

from django.db import migrations, models

FUNCTION = "edx_event_bus_outbox_notify"
TABLE = "edx_event_bus_outbox_event"
PRESENCE = "edx_event_bus_outbox_relay"
CHANNEL = "edx_event_bus_outbox"


def wake_only_a_waiting_relay(apps, schema_editor):
    if schema_editor.connection.vendor in ("postgresql", "mysql"):
        schema_editor.execute(f"ALTER TABLE {PRESENCE} ALTER COLUMN waiting SET DEFAULT false")
    # A deferred constraint trigger runs at commit, so it sees a relay that began waiting
    # while the writer's transaction was open; constraint triggers are per row.
    _replace_trigger(
        schema_editor,
        f"IF EXISTS (SELECT 1 FROM {PRESENCE} WHERE waiting AND expires_at > now()) THEN "
        f"PERFORM pg_notify('{CHANNEL}', ''); END IF;",
        f"CONSTRAINT TRIGGER {FUNCTION} AFTER INSERT ON {TABLE} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW",
    )


def wake_on_every_insert(apps, schema_editor):
    """The trigger of migration 0004: one NOTIFY per inserting statement."""
    _replace_trigger(
        schema_editor,
        f"PERFORM pg_notify('{CHANNEL}', '');",
        f"TRIGGER {FUNCTION} AFTER INSERT ON {TABLE} FOR EACH STATEMENT",
    )


def _replace_trigger(schema_editor, body, trigger):
    """On PostgreSQL, make the trigger function run ``body`` and re-create its trigger as ``CREATE <trigger>``."""
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("SET LOCAL lock_timeout = '10s'")
    schema_editor.execute(
        f"CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN {body} RETURN NULL; END; $$"
    )
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {FUNCTION} ON {TABLE}")
    schema_editor.execute(f"CREATE {trigger} EXECUTE FUNCTION {FUNCTION}()")


class Migration(migrations.Migration):
    dependencies = [("edx_event_bus_outbox", "0011_created_not_indexed")]

    operations = [
        migrations.AddField(
            model_name="relaypresence",
            name="waiting",
            field=models.BooleanField(
                default=False,
                help_text="The relay found nothing and may be asleep: commits that write events wake it",
            ),
        ),
        # Not atomic on MariaDB, whose DDL cannot be rolled back; on PostgreSQL the migration is one transaction.
        migrations.RunPython(wake_only_a_waiting_relay, wake_on_every_insert, atomic=False),
    ]
