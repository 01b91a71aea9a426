"""
``python manage.py purge_consumer_inbox``: delete consumer inbox rows past their retention.

Deletes in bounded batches, each its own short transaction, so it can run beside busy
consumers. Only needed when ``EVENT_BUS_OUTBOX_CONSUMER_DEDUPLICATE`` is on.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ... import conf
from ...consumer import inbox


class Command(BaseCommand):
    help = (
        "Delete consumer inbox (deduplication) rows older than EVENT_BUS_OUTBOX_CONSUMER_INBOX_RETENTION_DAYS, "
        "in bounded batches."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days", type=float, help="Retention in days (default EVENT_BUS_OUTBOX_CONSUMER_INBOX_RETENTION_DAYS)."
        )
        parser.add_argument(
            "--batch-size", type=int, help="Rows per delete (default EVENT_BUS_OUTBOX_PURGE_BATCH_SIZE)."
        )

    def handle(self, *args, **options):
        days = options["days"] if options["days"] is not None else conf.consumer_inbox_retention_days()
        batch_size = options["batch_size"] or conf.purge_batch_size()
        if days < 0 or batch_size < 1:
            raise CommandError("--days must be >= 0 and --batch-size >= 1.")
        cutoff = timezone.now() - timedelta(days=days)
        batches = []
        removed = inbox.purge(cutoff, batch_size, progress=batches.append)
        self.stdout.write(
            f"Purged {removed} consumer inbox row(s) processed before {cutoff.isoformat()} "
            f"in {len(batches)} batch(es) of at most {batch_size}."
        )
