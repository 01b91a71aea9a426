"""
The workload: transactions that write events for random keys, some rolled back, some
raising, all recorded so the checker knows what must (and must not) reach Kafka.

A transaction whose COMMIT itself fails (the database restarted under it) has an unknown
outcome; its events are recorded as *uncertain*: neither lost nor phantom, whichever happens.
"""

import random
import threading
import time
from dataclasses import dataclass, field

from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from opaque_keys.edx.keys import CourseKey
from openedx_events.data import EventsMetadata

from edx_event_bus_outbox import create_producer
from tests.factories import CourseDataFactory, CourseEnrollmentDataFactory, enrollment_event


class Raised(Exception):
    """The application raised inside its transaction."""


@dataclass
class Ledger:
    committed: list = field(default_factory=list)  # event ids, in commit order per writer
    rolled_back: set = field(default_factory=set)
    raised: set = field(default_factory=set)
    uncertain: set = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def run_writer(topic, keys, transactions, seed, ledger, pause=0.002):
    """One writer thread; ``keys`` are its own, so per-key commit order is this thread's order."""
    rng = random.Random(seed)
    producer = create_producer()
    signal, key_field, _ = enrollment_event()
    for _ in range(transactions):
        fate = rng.choices(["commit", "rollback", "raise"], weights=[70, 15, 15])[0]
        events = [(rng.choice(keys), EventsMetadata(event_type=signal.event_type)) for _ in range(rng.randint(1, 3))]
        ids = [str(metadata.id) for _, metadata in events]
        _run_transaction(producer, signal, key_field, topic, events, fate, ids, ledger)
        time.sleep(pause)
    connection.close()


def _run_transaction(producer, signal, key_field, topic, events, fate, ids, ledger):
    committing = False
    try:
        with transaction.atomic():
            for key, metadata in events:
                data = {
                    "enrollment": CourseEnrollmentDataFactory(
                        course=CourseDataFactory(course_key=CourseKey.from_string(f"course-v1:Chaos+K{key}+Run"))
                    )
                }
                producer.send(
                    signal=signal, topic=topic, event_key_field=key_field, event_data=data, event_metadata=metadata
                )
            if fate == "rollback":
                transaction.set_rollback(True)
            elif fate == "raise":
                raise Raised()
            committing = True
        with ledger.lock:
            if fate == "rollback":
                ledger.rolled_back.update(ids)
            else:
                ledger.committed.extend(ids)
    except Raised:
        with ledger.lock:
            ledger.raised.update(ids)
    except (OperationalError, InterfaceError, DatabaseError):
        with ledger.lock:
            if committing:
                ledger.uncertain.update(ids)
            else:
                ledger.rolled_back.update(ids)
        connection.close()
        time.sleep(0.5)  # the database is restarting; try the next transaction shortly
