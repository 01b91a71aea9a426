"""
``python manage.py purge_outbox``: delete sent rows past the retention period.

Deletes in bounded batches, each its own short transaction, so it never holds long locks
and can run beside a busy relay. Dead and pending rows are never touched.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ... import conf
from ...outbox.retention import purge_sent


class Command(BaseCommand):
    help = "Delete sent outbox rows older than EVENT_BUS_OUTBOX_RETENTION_DAYS, in bounded batches."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, help="Retention in days (default EVENT_BUS_OUTBOX_RETENTION_DAYS).")
        parser.add_argument(
            "--batch-size", type=int, help="Rows per delete (default EVENT_BUS_OUTBOX_PURGE_BATCH_SIZE)."
        )
        parser.add_argument("--sleep", type=float, default=0.0, help="Seconds to pause between batches.")

    def handle(self, *args, **options):
        days = options["days"] if options["days"] is not None else conf.retention_days()
        batch_size = options["batch_size"] or conf.purge_batch_size()
        if days < 0 or batch_size < 1:
            raise CommandError("--days must be >= 0 and --batch-size >= 1.")
        cutoff = timezone.now() - timedelta(days=days)
        self.verbosity = options["verbosity"]
        removed = purge_sent(cutoff, batch_size, options["sleep"], progress=self._progress)
        self.stdout.write(f"Purged {removed} sent outbox row(s) sent before {cutoff.isoformat()}.")

    def _progress(self, removed):
        if self.verbosity >= 2:
            self.stdout.write(f"... {removed} removed so far")
