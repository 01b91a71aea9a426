# The payload's length, stored at write time for the relay's byte bound (store.pending_batch).
# A nullable column with no default or CHECK constraint: PostgreSQL, MariaDB (INSTANT) and SQLite add it without
# rewriting the table, so the migration takes no time on a table of millions of rows.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("edx_event_bus_outbox", "0007_consumer_inbox_claims"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxevent",
            name="payload_size",
            field=models.IntegerField(
                blank=True,
                help_text="Characters of the payload's JSON text as written; null on older rows",
                null=True,
            ),
        ),
    ]
