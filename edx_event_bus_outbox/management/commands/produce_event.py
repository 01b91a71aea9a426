"""
``python manage.py produce_event``: write one event through the outbox, for testing and repair.

The arguments are edx-event-bus-kafka's (``--signal --topic --key-field --data``), so existing
runbooks keep working. Unlike that command, bad input is an error with a non-zero exit, never
a logged exception followed by success.
"""

import json

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.module_loading import import_string
from openedx_events.data import EventsMetadata
from openedx_events.event_bus.avro.deserializer import AvroSignalDeserializer
from openedx_events.tooling import OpenEdxPublicSignal

from ... import conf
from ...exceptions import EventValidationError
from ...outbox.models import OutboxEvent
from ...outbox.modes import mode_for
from ...outbox.producer import create_producer

EXAMPLE_SIGNAL = "openedx_events.learning.signals.SESSION_LOGIN_COMPLETED"


class Command(BaseCommand):
    help = (
        "Write one event to the outbox, in a transaction; the relay publishes it. Example: "
        f"manage.py produce_event --signal {EXAMPLE_SIGNAL} --topic user-login --key-field user.pii.username "
        """--data '{"user": {"id": 123, "is_active": true, "pii": {"username": "foobob", """
        """"email": "bob@foo.example", "name": "Bob Foo"}}}'"""
    )

    def add_arguments(self, parser):
        # nargs=1 as in edx-event-bus-kafka, so that its invocations work unchanged.
        parser.add_argument("--signal", nargs=1, required=True, help="Dotted path to an OpenEdxPublicSignal instance")
        parser.add_argument("--topic", nargs=1, required=True, help="Topic to produce to (without environment prefix)")
        parser.add_argument(
            "--key-field",
            nargs=1,
            required=True,
            help="Dotted string representing path to event key in event data dictionary",
        )
        parser.add_argument(
            "--data", nargs=1, required=True, help="JSON representation of kwargs dict appropriate for the signal"
        )

    def handle(self, *args, **options):
        signal = load_signal(options["signal"][0])
        event_data = parse_event_data(signal, options["data"][0])
        topic, key_field = options["topic"][0], options["key_field"][0]
        metadata = EventsMetadata(event_type=signal.event_type)
        producer = create_producer()
        alias = conf.database_alias()
        try:
            with transaction.atomic(using=alias):
                producer.send(
                    signal=signal,
                    topic=topic,
                    event_key_field=key_field,
                    event_data=event_data,
                    event_metadata=metadata,
                )
        except EventValidationError as exc:
            raise CommandError(
                f"Nothing was written: field {exc.field!r} of {signal.event_type} {exc.problem}. "
                "Fix --data or --key-field."
            ) from exc
        self._report(producer, metadata, topic, alias)

    def _report(self, producer, metadata, topic, alias):
        if mode_for(metadata.event_type, topic) == conf.MODE_ON_COMMIT:
            # No row: the producer handed the event to Kafka on commit; wait for the delivery.
            producer.prepare_for_shutdown()
            self.stdout.write(
                f"Event {metadata.id} ({metadata.event_type}) published to topic {topic!r} "
                "in on-commit mode, without an outbox row; delivery errors are logged."
            )
            return
        row_id = OutboxEvent.objects.using(alias).values_list("id", flat=True).get(event_id=metadata.id, topic=topic)
        self.stdout.write(
            f"Event {metadata.id} ({metadata.event_type}) written to the outbox as row {row_id} "
            f"for topic {topic!r}; the relay will publish it."
        )


def load_signal(path: str) -> OpenEdxPublicSignal:
    try:
        signal = import_string(path)
    except ImportError as exc:
        raise CommandError(
            f"--signal {path!r} cannot be imported ({exc}). Give the dotted path of an "
            f"OpenEdxPublicSignal, e.g. {EXAMPLE_SIGNAL}."
        ) from exc
    if not isinstance(signal, OpenEdxPublicSignal):
        raise CommandError(
            f"--signal {path!r} is a {type(signal).__name__}, not an OpenEdxPublicSignal, e.g. {EXAMPLE_SIGNAL}."
        )
    return signal


def parse_event_data(signal: OpenEdxPublicSignal, text: str) -> dict:
    """
    The signal's ``send_event`` keyword arguments, built from JSON in the Avro record shape.

    Going through ``AvroSignalDeserializer`` (what a consumer does) rather than passing the
    raw dicts on, as edx-event-bus-kafka does, parses course keys, dates and the like, so a
    malformed one is refused here instead of being stored as a string no consumer can read.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--data is not valid JSON: {exc}.") from exc
    expected = sorted(signal.init_data)
    if not isinstance(data, dict):
        raise CommandError(
            f"--data must be a JSON object with the keys {expected} of {signal.event_type}, "
            f"not a {type(data).__name__}."
        )
    if sorted(data) != expected:
        raise CommandError(
            f"--data for {signal.event_type} must have exactly the keys {expected}; it has {sorted(data)}."
        )
    try:
        return AvroSignalDeserializer(signal).from_dict(data)
    # Constructors of the data classes and of their custom types (CourseKey, datetime...)
    # raise whatever they raise; each means "the data does not fit the signal".
    except Exception as exc:
        raise CommandError(f"--data does not match {signal.event_type}: {type(exc).__name__}: {exc}.") from exc
