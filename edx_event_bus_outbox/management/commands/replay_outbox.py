"""
``python manage.py replay_outbox``: publish sent outbox rows again, in their original order.

For refilling a stream that Redis trimmed or evicted, or giving a new consumer group history
the broker no longer holds (docs/operations.rst, "Replaying sent events"). Changes no row, so
it is safe beside running relays. Progress goes to stderr; a failure exits 1 and says which
``--after-id`` resumes it.
"""

import signal
import threading
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError
from openedx_events.tooling import load_all_signals

from ... import conf
from ...exceptions import OutboxError
from ...relay.replay import Selection, last_id_within, parse_time, plan_replay, replay


class Command(BaseCommand):
    help = (
        "Publish sent outbox rows again, byte for byte as first published, in id order: selected by the time "
        "they were created (--since/--until, or --all), --topic and --event-type."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--since", help="Rows created at or after this ISO-8601 time, with its timezone (2026-12-01T09:00Z)."
        )
        parser.add_argument("--until", help="Rows created before this ISO-8601 time, with its timezone.")
        parser.add_argument(
            "--all", action="store_true", dest="everything", help="No time bound: every sent row still retained."
        )
        parser.add_argument(
            "--topic", action="append", dest="topics", default=[], help="Only this un-prefixed topic (repeatable)."
        )
        parser.add_argument(
            "--event-type", action="append", dest="event_types", default=[], help="Only this type (repeatable)."
        )
        parser.add_argument("--after-id", type=int, help="Start after this row id: the resume point of a stopped run.")
        parser.add_argument("--limit", type=int, help="Publish at most this many events.")
        parser.add_argument("--batch-size", type=int, help="Rows per batch (EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE).")
        parser.add_argument(
            "--batch-max-bytes", type=int, help="Most payload bytes per batch (EVENT_BUS_OUTBOX_RELAY_BATCH_MAX_BYTES)."
        )
        parser.add_argument("--dry-run", action="store_true", help="Print what would be replayed; publish nothing.")

    def handle(self, *args, **options):
        try:
            selection = Selection(
                since=None if options["since"] is None else parse_time("--since", options["since"]),
                until=None if options["until"] is None else parse_time("--until", options["until"]),
                topics=tuple(options["topics"]),
                event_types=tuple(options["event_types"]),
                everything=options["everything"],
            )
            numbers = self._numbers(options)
            conf.check_settings()
            if options["dry_run"]:
                self._dry_run(selection, numbers["after_id"], numbers["limit"])
                return
            load_all_signals()
            with _stop_on_signals() as stopping:
                done = replay(selection, **numbers, progress=self._progress, stopping=stopping)
        except OutboxError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Replayed {done.done} event(s) in {done.seconds:.1f}s"
            + (f", every selected row up to id {done.last_id}." if done.done else "; nothing was selected.")
        )
        if numbers["limit"] is not None and done.done == numbers["limit"]:
            self.stdout.write(f"--limit reached: to go on, run again with --after-id {done.last_id}.")

    @staticmethod
    def _numbers(options):
        after_id = options["after_id"]
        if after_id is not None:
            after_id = conf.require_number("--after-id", after_id, integer=True, inclusive=True)
        return {
            "after_id": after_id,
            **{
                name: None
                if options[name] is None
                else conf.require_positive_int(f"--{name.replace('_', '-')}", options[name])
                for name in ("limit", "batch_size", "batch_max_bytes")
            },
        }

    def _progress(self, progress):
        share = f" ({100 * progress.done / progress.total:.0f}%)" if progress.total else ""
        self.stderr.write(
            f"replayed {progress.done}/{progress.total} events{share}, {progress.rate:.0f}/s, "
            f"through id {progress.last_id}"
        )

    def _dry_run(self, selection, after_id, limit):
        plan = plan_replay(selection, after_id=after_id)
        if not plan.groups:
            self.stdout.write("Dry run: nothing to replay (no sent row in the selection).")
            return
        self.stdout.write(f"Dry run: would replay {plan.total} sent event(s), nothing is published.")
        for group in plan.groups:
            self.stdout.write(
                f"  {group.topic}  {group.event_type}: {group.events} event(s), ids {group.first_id}..{group.last_id}, "
                f"created {group.first_created.isoformat()} .. {group.last_created.isoformat()}"
            )
        self.stdout.write(f"First id {plan.first_id}, last id {plan.last_id}.")
        if limit is not None and limit < plan.total:
            last = last_id_within(selection, plan, after_id, limit)
            self.stdout.write(f"--limit {limit}: only the first {limit}, ids {plan.first_id}..{last}.")


@contextmanager
def _stop_on_signals():
    """SIGINT and SIGTERM end the replay after the batch in flight, so that it can say where to resume."""
    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopping
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
