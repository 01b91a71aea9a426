"""``python manage.py requeue_outbox``: give dead rows another chance, after fixing their cause."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from ... import conf
from ...outbox.held import release_held
from ...outbox.requeue import dead_rows, requeue


class Command(BaseCommand):
    help = (
        "Put dead outbox rows back to pending (attempts reset), selected by id, event type, topic, or all, "
        "with the rows of their keys held behind them."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--id", type=int, action="append", dest="ids", metavar="ROW_ID", help="Row id (repeatable)."
        )
        parser.add_argument("--event-type", help="Every dead row of this event type.")
        parser.add_argument(
            "--topic",
            help="Every dead row of this (un-prefixed) topic; also releases held rows "
            "no dead row stands in front of any more (e.g. after one was deleted).",
        )
        parser.add_argument("--all", action="store_true", help="Every dead row.")
        parser.add_argument("--dry-run", action="store_true", help="Count what would be requeued; change nothing.")

    def handle(self, *args, **options):
        if not (options["ids"] or options["event_type"] or options["topic"] or options["all"]):
            raise CommandError("Say which dead rows to requeue: --id, --event-type, --topic, or --all.")
        rows = dead_rows(ids=options["ids"], event_type=options["event_type"], topic=options["topic"])
        alias, released = conf.database_alias(), 0
        with transaction.atomic(using=alias):
            count = rows.count() if options["dry_run"] else requeue(rows)
            if options["topic"] and not options["dry_run"]:
                released = release_held(alias, options["topic"])
        verb = "would be requeued" if options["dry_run"] else "requeued"
        self.stdout.write(f"{count} dead outbox row(s) {verb}.")
        if released:
            self.stdout.write(f"{released} held row(s) released: no dead row of their key is left in front of them.")
