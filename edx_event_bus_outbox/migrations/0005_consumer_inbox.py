# The consumer inbox: which receivers of which consumer group already handled an event, so
# that EVENT_BUS_OUTBOX_CONSUMER_DEDUPLICATE can skip them when the event is delivered again.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("edx_event_bus_outbox", "0004_notify_trigger"),
    ]

    operations = [
        migrations.CreateModel(
            name="ConsumerInboxEntry",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("group_id", models.CharField(max_length=200)),
                ("event_id", models.UUIDField()),
                ("receiver", models.CharField(help_text="module.qualname of the receiver function", max_length=200)),
                ("processed_at", models.DateTimeField(db_index=True)),
            ],
            options={
                "db_table": "edx_event_bus_outbox_consumer_inbox",
                "constraints": [
                    models.UniqueConstraint(fields=("group_id", "event_id", "receiver"), name="outbox_inbox_once"),
                ],
            },
        ),
    ]
