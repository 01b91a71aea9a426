"""
The ``held`` status (rows waiting behind a dead row of their key, ADR 11) and ``failing_since``
(the start of a row's retry budget, ADR 3). Adding a nullable column is a metadata-only change
on PostgreSQL and MariaDB; the choices change needs no SQL.
"""

import model_utils.fields
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("edx_event_bus_outbox", "0005_consumer_inbox"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxevent",
            name="failing_since",
            field=models.DateTimeField(blank=True, help_text="First failure of its own (ADR 3)", null=True),
        ),
        migrations.AlterField(
            model_name="outboxevent",
            name="status",
            field=model_utils.fields.StatusField(
                choices=[("pending", "Pending"), ("sent", "Sent"), ("dead", "Dead"), ("held", "Held")],
                default="pending",
                max_length=100,
                no_check_for_status=True,
            ),
        ),
    ]
