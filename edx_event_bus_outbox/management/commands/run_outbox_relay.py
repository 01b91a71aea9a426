"""
``python manage.py run_outbox_relay``: publish the outbox to Kafka until stopped.

Run one or more per deployment; leases make extra ones hot standbys. SIGTERM or SIGINT
finishes the batch in flight, releases the leases and exits 0.
"""
import signal

from django.core.management.base import BaseCommand
from openedx_events.tooling import load_all_signals

from ...relay.relay import Relay, RelayOptions


class Command(BaseCommand):
    help = "Relay pending outbox events to Kafka, in order, marking each sent once the broker acknowledged it."

    def add_arguments(self, parser):
        parser.add_argument("--until-empty", action="store_true",
                            help="Exit 0 once no row is pending (dead rows do not count).")
        parser.add_argument("--lane", "--topic", action="append", dest="lanes", metavar="TOPIC",
                            help="Relay only this topic (repeatable). Default: EVENT_BUS_OUTBOX_RELAY_LANES, else all.")
        parser.add_argument("--batch-size", type=int, help="Rows per batch (EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE).")
        parser.add_argument("--batch-max-bytes", type=int,
                            help="Most payload bytes per batch (EVENT_BUS_OUTBOX_RELAY_BATCH_MAX_BYTES).")
        parser.add_argument("--poll-interval", type=float,
                            help="Longest idle wait in seconds (EVENT_BUS_OUTBOX_RELAY_POLL_INTERVAL).")
        parser.add_argument("--lease-seconds", type=float,
                            help="Lane lease duration (EVENT_BUS_OUTBOX_RELAY_LEASE_SECONDS).")
        parser.add_argument("--heartbeat-file",
                            help="Touch this file every loop, for liveness probes (EVENT_BUS_OUTBOX_RELAY_HEARTBEAT_FILE).")

    def handle(self, *args, **options):
        load_all_signals()
        relay = Relay(self._relay_options(options))
        signal.signal(signal.SIGTERM, relay.stop)
        signal.signal(signal.SIGINT, relay.stop)
        relay.run()
        self.stdout.write(f"Outbox relay stopped: {relay.sent_total} sent, {relay.dead_total} moved to dead.")

    @staticmethod
    def _relay_options(options):
        relay_options = RelayOptions(until_empty=options["until_empty"])
        for name in ("lanes", "batch_size", "batch_max_bytes", "poll_interval", "lease_seconds", "heartbeat_file"):
            if options.get(name) is not None:
                setattr(relay_options, name, options[name])
        return relay_options
