"""``python manage.py outbox_status``: how far behind the relay is, lane by lane."""

import json

from django.core.management.base import BaseCommand, CommandError

from ...outbox.status import lane_statuses, problems


class Command(BaseCommand):
    help = (
        "Per lane: pending count, oldest pending age, dead and held counts, lease holder and expiry, last sent. "
        "--check exits 1 when EVENT_BUS_OUTBOX_STATUS_MAX_PENDING_AGE or _MAX_DEAD is exceeded, or rows are "
        "held behind dead ones."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print JSON for machines.")
        parser.add_argument("--check", action="store_true", help="Exit 1 when a threshold is exceeded (for probes).")

    def handle(self, *args, **options):
        statuses = lane_statuses()
        found = problems(statuses)
        if options["json"]:
            self.stdout.write(json.dumps({"lanes": [s.as_json() for s in statuses], "problems": found}, indent=2))
        else:
            self._print_table(statuses, found)
        if options["check"] and found:
            raise CommandError("; ".join(found), returncode=1)

    def _print_table(self, statuses, found):
        if not statuses:
            self.stdout.write("The outbox is empty: nothing pending, dead or held, no relay lease.")
        else:
            self.stdout.write(
                f"{'lane':<40} {'pending':>8} {'oldest':>9} {'dead':>6} {'held':>6}  "
                f"{'lease holder':<28} {'lease expires':<25} last sent"
            )
        for s in statuses:
            age = f"{s.oldest_pending_age_seconds:.1f}s" if s.oldest_pending_age_seconds is not None else "-"
            self.stdout.write(
                f"{s.lane:<40} {s.pending:>8} {age:>9} {s.dead:>6} {s.held:>6}  {s.lease_holder or '(none)':<28} "
                f"{s.lease_expires_at.isoformat() if s.lease_expires_at else '-':<25} "
                f"{s.last_sent_at.isoformat() if s.last_sent_at else '-'}"
            )
        for problem in found:
            self.stdout.write(self.style.WARNING(f"PROBLEM: {problem}"))
