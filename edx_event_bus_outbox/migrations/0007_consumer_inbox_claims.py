# Consumer inbox claims: a receiver is claimed before it runs (ADR 12).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("edx_event_bus_outbox", "0006_held_rows_and_failing_since"),
    ]

    operations = [
        migrations.AddField(
            model_name="consumerinboxentry",
            name="claimed_by",
            field=models.CharField(
                blank=True,
                help_text="the consumer running the receiver now; empty once it succeeded",
                max_length=32,
                null=True,
            ),
        ),
    ]
