"""
Consumer benchmark: events consumed and emitted per second, with no-op receivers, by our
``KafkaEventConsumer`` and by edx-event-bus-kafka's, on the same pre-filled topic in the same run.

``make bench`` calls ``run(n_events, topic_prefix)``. Standalone (with the stack up)::

    DJANGO_SETTINGS_MODULE=tests.settings .venv/bin/python -m tests.consumer.bench_consumer [N_EVENTS] [REPEATS]

Each consumer runs in this process with a fresh consumer group whose offsets are committed at
the start of the topic, so both read exactly the same messages. The rate is measured from the
first to the last receiver call, so group joining is left out for both alike. Both run with their
default settings (audit logging on) and the same logging set-up: their audit lines are
formatted and written to os.devnull. Runs alternate between the two and the median is reported.
"""

import json
import logging
import os
import statistics
import sys
import threading
import time
import uuid

RUN_TIMEOUT_SECONDS = 300


def run(n_events: int = 5000, topic_prefix: str = "bench", repeats: int = 5) -> dict:
    """Fill a topic with ``n_events`` and consume it ``repeats`` times with each consumer."""
    _setup_django()
    from django.test import override_settings

    base_topic = f"consumer-{uuid.uuid4().hex[:8]}"
    with override_settings(EVENT_BUS_TOPIC_PREFIX=topic_prefix, EVENT_BUS_KAFKA_CONSUMER_POLL_TIMEOUT=0.5):
        full_topic = f"{topic_prefix}-{base_topic}"
        _fill(base_topic, full_topic, n_events)
        _quiet_logging()
        runs = {"edx_event_bus_outbox": [], "edx_event_bus_kafka": []}
        for _ in range(repeats):
            runs["edx_event_bus_outbox"].append(_measure(_ours, base_topic, full_topic, n_events))
            runs["edx_event_bus_kafka"].append(_measure(_edx_event_bus_kafka, base_topic, full_topic, n_events))
    wall = {name: statistics.median(rate for rate, _ in results) for name, results in runs.items()}
    cpu = {name: statistics.median(rate for _, rate in results) for name, results in runs.items()}
    return {
        "benchmark": "consumer: events/s consumed and emitted, no-op receivers",
        "topic": full_topic,
        "n_events": n_events,
        "repeats": repeats,
        "edx_event_bus_outbox_events_per_s": round(wall["edx_event_bus_outbox"], 1),
        "edx_event_bus_kafka_events_per_s": round(wall["edx_event_bus_kafka"], 1),
        "ratio": round(wall["edx_event_bus_outbox"] / wall["edx_event_bus_kafka"], 2),
        "goal_ratio": 1.5,
        "edx_event_bus_outbox_events_per_cpu_s": round(cpu["edx_event_bus_outbox"], 1),
        "edx_event_bus_kafka_events_per_cpu_s": round(cpu["edx_event_bus_kafka"], 1),
        "cpu_ratio": round(cpu["edx_event_bus_outbox"] / cpu["edx_event_bus_kafka"], 2),
        "load_average": os.getloadavg()[0],
        "runs_events_per_s": {name: [round(rate, 1) for rate, _ in results] for name, results in runs.items()},
    }


def _setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def _fill(base_topic, full_topic, n_events):
    from confluent_kafka import Producer
    from django.conf import settings

    from edx_event_bus_outbox.kafka.topics import create_topics
    from tests.consumer.helpers import encoded
    from tests.factories import enrollment_event

    servers = settings.EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS
    create_topics({"bootstrap.servers": servers}, {full_topic: 3})
    producer = Producer({"bootstrap.servers": servers, "linger.ms": 20})
    for _ in range(n_events):  # distinct events (ids, users, courses), as our relay would send them
        message = encoded(*enrollment_event(), base_topic)
        producer.produce(message.topic, key=message.key, value=message.value, headers=message.headers)
        producer.poll(0)
    if producer.flush(60):
        raise RuntimeError("could not fill the benchmark topic")


def _quiet_logging():
    sink = logging.StreamHandler(open(os.devnull, "w", encoding="utf-8"))
    for name in ("edx_event_bus_outbox", "edx_event_bus_kafka"):
        logger = logging.getLogger(name)
        logger.handlers, logger.propagate = [sink], False
        logger.setLevel(logging.INFO)


def _start_group_at_beginning(full_topic, group):
    from django.conf import settings

    from tests.kafka_tools import StackClients

    StackClients(settings.EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS, None).set_group_offsets(group, full_topic, offset=0)


def _ours(base_topic, group):
    from edx_event_bus_outbox.consumer.consumer import KafkaEventConsumer

    consumer = KafkaEventConsumer(topic=base_topic, group_id=group)
    return consumer, consumer.stop


def _edx_event_bus_kafka(base_topic, group):

    from edx_event_bus_kafka import KafkaEventConsumer

    from tests.kafka_tools import give_edx_event_bus_kafka_our_registry_client

    # A registry request Apicurio never answers must not hang the benchmark.
    give_edx_event_bus_kafka_our_registry_client()
    consumer = KafkaEventConsumer(topic=base_topic, group_id=group)
    return consumer, consumer._shut_down


def _measure(make_consumer, base_topic, full_topic, n_events) -> tuple:
    """
    Events per second of wall time, and per second of the consuming thread's CPU time, between
    the first and the last receiver call. The second ignores other processes competing for the
    CPU (librdkafka's own threads are left out of both consumers alike).
    """
    from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

    group = f"bench-{uuid.uuid4().hex[:8]}"
    _start_group_at_beginning(full_topic, group)
    consumer, stop = make_consumer(base_topic, group)
    times, cpu = [], []

    def no_op(**kwargs):
        times.append(time.perf_counter())
        if len(times) in (1, n_events):
            cpu.append(time.thread_time())
        if len(times) == n_events:
            stop()

    uid = f"bench-{group}"
    watchdog = threading.Timer(RUN_TIMEOUT_SECONDS, stop)  # e.g. the broker went away
    COURSE_ENROLLMENT_CREATED.connect(no_op, weak=False, dispatch_uid=uid)
    watchdog.start()
    try:
        consumer.consume_indefinitely()
    finally:
        watchdog.cancel()
        COURSE_ENROLLMENT_CREATED.disconnect(dispatch_uid=uid)
    if len(times) != n_events:
        raise RuntimeError(f"{make_consumer.__name__} emitted {len(times)} of {n_events} events")
    return (n_events - 1) / (times[-1] - times[0]), (n_events - 1) / (cpu[-1] - cpu[0])


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    arguments = [int(a) for a in sys.argv[1:3]]
    print(json.dumps(run(*arguments[:1], repeats=arguments[1] if len(arguments) > 1 else 5), indent=2))
