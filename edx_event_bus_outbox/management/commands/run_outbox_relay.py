"""
``python manage.py run_outbox_relay``: publish the outbox to Kafka until stopped.

Run one or more per deployment; leases make extra ones hot standbys. SIGTERM or SIGINT
finishes the batch in flight, releases the leases and exits 0.
"""

import argparse
import signal

from django.core.management.base import BaseCommand, CommandError
from openedx_events.tooling import load_all_signals

from ... import conf
from ...exceptions import MetricsServerError, OutboxConfigurationError
from ...relay.relay import Relay, RelayOptions

# option -> (its name on the command line, the check of its value, the setting it overrides)
OPTIONS = {
    "lanes": ("--lane", conf.require_lane_names, "EVENT_BUS_OUTBOX_RELAY_LANES"),
    "batch_size": ("--batch-size", conf.require_positive_int, "EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE"),
    "batch_max_bytes": ("--batch-max-bytes", conf.require_positive_int, "EVENT_BUS_OUTBOX_RELAY_BATCH_MAX_BYTES"),
    "poll_interval": ("--poll-interval", conf.require_positive_seconds, "EVENT_BUS_OUTBOX_RELAY_POLL_INTERVAL"),
    "lease_seconds": ("--lease-seconds", conf.require_positive_seconds, "EVENT_BUS_OUTBOX_RELAY_LEASE_SECONDS"),
    "heartbeat_file": ("--heartbeat-file", conf.require_heartbeat_file, "EVENT_BUS_OUTBOX_RELAY_HEARTBEAT_FILE"),
    "metrics_port": ("--metrics-port", conf.require_port, "EVENT_BUS_OUTBOX_RELAY_METRICS_PORT"),
    "exactly_once": ("--exactly-once", conf.require_bool, "EVENT_BUS_OUTBOX_RELAY_EXACTLY_ONCE"),
}


class Command(BaseCommand):
    help = "Relay pending outbox events to Kafka, in order, marking each sent once the broker acknowledged it."

    def add_arguments(self, parser):
        parser.add_argument(
            "--until-empty", action="store_true", help="Exit 0 once no row is pending (dead rows do not count)."
        )
        parser.add_argument(
            "--lane",
            "--topic",
            action="append",
            dest="lanes",
            metavar="TOPIC",
            help="Relay only this topic (repeatable). Default: EVENT_BUS_OUTBOX_RELAY_LANES, else all.",
        )
        parser.add_argument("--batch-size", type=int, help="Rows per batch (EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE).")
        parser.add_argument(
            "--batch-max-bytes", type=int, help="Most payload bytes per batch (EVENT_BUS_OUTBOX_RELAY_BATCH_MAX_BYTES)."
        )
        parser.add_argument(
            "--poll-interval", type=float, help="Longest idle wait in seconds (EVENT_BUS_OUTBOX_RELAY_POLL_INTERVAL)."
        )
        parser.add_argument(
            "--lease-seconds", type=float, help="Lane lease duration (EVENT_BUS_OUTBOX_RELAY_LEASE_SECONDS)."
        )
        parser.add_argument(
            "--heartbeat-file",
            help="Touch this file every loop, for liveness probes (EVENT_BUS_OUTBOX_RELAY_HEARTBEAT_FILE).",
        )
        parser.add_argument(
            "--exactly-once",
            action=argparse.BooleanOptionalAction,
            help="Publish each batch as one Kafka transaction, or not (EVENT_BUS_OUTBOX_RELAY_EXACTLY_ONCE).",
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            help="Serve /metrics and /healthz on this port (EVENT_BUS_OUTBOX_RELAY_METRICS_PORT).",
        )

    def handle(self, *args, **options):
        try:
            relay_options = self._relay_options(options)
            conf.check_settings()  # all of them, so that a bad one fails now and not in the first batch
        except OutboxConfigurationError as exc:
            raise CommandError(f"{exc} The relay did not start.") from exc
        load_all_signals()
        relay = Relay(relay_options)
        signal.signal(signal.SIGTERM, relay.stop)
        signal.signal(signal.SIGINT, relay.stop)
        try:
            relay.run()
        except MetricsServerError as exc:
            raise CommandError(f"{exc} The relay did not start.") from exc
        self.stdout.write(f"Outbox relay stopped: {relay.sent_total} sent, {relay.dead_total} moved to dead.")

    @staticmethod
    def _relay_options(options):
        """The settings, overridden by the options given; each checked under the name it was given by."""
        relay_options = RelayOptions(until_empty=options["until_empty"])
        given_as = {}
        for name, (option, check, setting) in OPTIONS.items():
            given_as[name] = setting
            if options.get(name) is not None:
                setattr(relay_options, name, check(option, options[name]))
                given_as[name] = option
        conf.check_relay_timing(
            relay_options.lease_seconds,
            relay_options.poll_interval,
            lease_name=given_as["lease_seconds"],
            poll_name=given_as["poll_interval"],
        )
        return relay_options
