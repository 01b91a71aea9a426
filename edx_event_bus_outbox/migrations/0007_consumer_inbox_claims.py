# Consumer inbox claims: a receiver is claimed before it runs (ADR 10).
# Depends on 0005: another change takes 0006; the order is re-pointed when both are merged.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('edx_event_bus_outbox', '0005_consumer_inbox'),
    ]

    operations = [
        migrations.AddField(
            model_name='consumerinboxentry',
            name='claimed_by',
            field=models.CharField(blank=True, help_text='the consumer running the receiver now; empty once it succeeded',
                                   max_length=32, null=True),
        ),
    ]
