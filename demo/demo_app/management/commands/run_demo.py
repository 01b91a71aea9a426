"""
``python demo/manage.py run_demo [--sink redis]``: the whole outbox path, end to end, on SQLite.

1. A fresh database and a fresh topic (a Kafka topic, or with ``--sink redis`` a Redis stream).
2. ``run_outbox_relay`` and ``consume_events`` start as real processes (with ``--sink redis``,
   the relay publishes to Redis Streams and ``consume_events`` runs edx-event-bus-redis's
   ``RedisEventConsumer``, as on a Tutor site).
3. Enrollments are created in transactions that also emit ``COURSE_ENROLLMENT_CREATED``;
   some transactions roll back (explicitly, or because the view raised).
4. The demo waits until every committed event was received, then prints what happened:
   committed, rolled back, published, received, lost, phantom, and latency percentiles.

Exit status: 0 when nothing was lost and no rolled-back event was published.
"""

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import redis
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from opaque_keys.edx.keys import CourseKey
from openedx_events.learning.data import CourseData, CourseEnrollmentData, UserData, UserPersonalData
from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

from demo_app.models import Enrollment
from edx_event_bus_outbox.kafka.config import common_client_config
from edx_event_bus_outbox.kafka.topics import create_topics
from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.redis_streams.entries import stream_name

MANAGE = Path(__file__).resolve().parents[3] / "manage.py"


class ViewFailed(Exception):
    """Stands for an exception raised by a view after it emitted its event."""


class Command(BaseCommand):
    help = "Run the end-to-end outbox demo and print a summary."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=400, help="Transactions to run (default 400).")
        parser.add_argument("--rollback-share", type=float, default=0.2, help="Share rolled back (default 0.2).")
        parser.add_argument("--rate", type=float, default=100.0, help="Transactions per second (default 100).")
        parser.add_argument("--timeout", type=float, default=60.0, help="Seconds to wait for delivery.")
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument(
            "--sink",
            choices=("kafka", "redis"),
            default=settings.DEMO_SINK,
            help="Publish to Kafka (default) or to Redis Streams, read by edx-event-bus-redis's consumer.",
        )

    def handle(self, *args, **options):
        rng = random.Random(options["seed"])
        self.bus = RedisStream() if options["sink"] == "redis" else None
        os.environ["OUTBOX_DEMO_SINK"] = options["sink"]  # for the relay and consume_events (demo_settings)
        self._fresh_start()
        topic, group = settings.DEMO_TOPIC, f"demo-{int(time.time())}"
        if self.bus:
            self.bus.prepare(topic)
            self.stdout.write(f"[2/4] Redis stream {stream_name(topic)!r} ready; only entries from here on count")
        else:
            self._prepare_topic(topic, group)
        consumer_options = ["--extra", json.dumps({"consumer_name": "demo-consumer"})] if self.bus else []
        processes = [
            self._spawn("relay", "run_outbox_relay", "--lane", topic),
            self._spawn("consumer", "consume_events", "-t", topic, "-g", group, *consumer_options),
        ]
        try:
            if self.bus:
                self.bus.wait_for_group(topic, group, settings.DEMO_DIR)
                self.stdout.write("      relay and consumer are running")
            else:
                self._wait_for_consumer(group)
            self._warm_up(rng)
            committed, rolled_back = self._emit(options, rng)
            received = self._wait_for(committed, options["timeout"])
        finally:
            self._stop(processes)
        published = [
            e for e in (self.bus.published(topic) if self.bus else self._published(topic)) if e not in self.warm_up_ids
        ]
        summary = self._summary(committed, rolled_back, published, received)
        self.stdout.write(summary["text"])
        if summary["lost"] or summary["phantom"]:
            raise CommandError(f"demo failed: lost={summary['lost']} phantom={summary['phantom']}")

    # ------------------------------------------------------------------ setup

    def _fresh_start(self):
        for name in ("demo.sqlite3", "received.jsonl"):
            (settings.DEMO_DIR / name).unlink(missing_ok=True)
        call_command("migrate", verbosity=0)
        self.stdout.write(f"[1/4] fresh SQLite database at {settings.DATABASES['default']['NAME']}")

    def _prepare_topic(self, topic, group):
        """A 3-partition topic whose partitions have leaders, and the consumer group's offsets at its end."""
        client = common_client_config()
        # exist_ok: the topic may be left from an earlier demo run; only messages from here on count.
        create_topics(client, {topic: 3}, exist_ok=True)
        consumer = Consumer({**client, "group.id": group})
        try:
            partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
            self.start_offsets = {
                p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in partitions
            }
        finally:
            consumer.close()
        offsets = [TopicPartition(topic, p, o) for p, o in self.start_offsets.items()]
        admin = AdminClient(client)  # referenced until the future resolves: a collected client never resolves it
        admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, offsets)], request_timeout=30)[
            group
        ].result(timeout=40)
        self.stdout.write(f"[2/4] topic {topic!r} ready; consumer group {group!r} starts at its end")

    def _spawn(self, name, *command):
        log = open(settings.DEMO_DIR / f"{name}.log", "wb")
        return subprocess.Popen(
            [sys.executable, str(MANAGE), *command],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )

    @staticmethod
    def _stop(processes):
        """SIGTERM, then SIGKILL what has not exited 30 s later: the demo never waits for ever."""
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def _wait_for_consumer(self, group, timeout=60):
        """Start emitting once the consumer has joined its group, so latency is not its start-up time."""
        from confluent_kafka import ConsumerGroupState

        admin = AdminClient(common_client_config())
        deadline = time.time() + timeout
        while time.time() < deadline:
            description = admin.describe_consumer_groups([group])[group].result(timeout=10)
            if description.state == ConsumerGroupState.STABLE and description.members:
                self.stdout.write("      relay and consumer are running")
                return
            time.sleep(0.3)
        raise CommandError(
            f"consume_events did not join group {group!r} within {timeout}s; see {settings.DEMO_DIR}/consumer.log"
        )

    # ------------------------------------------------------------------ the work

    def _warm_up(self, rng):
        """One event end to end first: schema registration and connections are paid once, not by the sample."""
        started = time.time()
        committed, _ = self._emit({"events": 1, "rollback_share": 0, "rate": 1000}, rng, quiet=True)
        if not self._wait_for(committed, 60).keys() >= committed.keys():
            raise CommandError(f"the warm-up event was not received in 60s; see {settings.DEMO_DIR}/*.log")
        self.stdout.write(
            f"      warm-up event received after {1000 * (time.time() - started):.0f} ms "
            "(opens the connections, registers the schemas on Kafka); not counted below"
        )
        (settings.DEMO_DIR / "received.jsonl").unlink()
        self.warm_up_ids = set(committed)

    def _emit(self, options, rng, quiet=False):
        total, committed, rolled_back = options["events"], {}, set()
        interval = 1.0 / options["rate"]
        if not quiet:
            self.stdout.write(f"[3/4] running {total} transactions, ~{options['rollback_share']:.0%} rolled back")
        for index in range(total):
            event_ids = []

            def capture(metadata, _ids=event_ids, **kwargs):
                _ids.append(str(metadata.id))

            COURSE_ENROLLMENT_CREATED.connect(capture, weak=False, dispatch_uid="demo-capture")
            try:
                self._enroll(index, rng.random() < options["rollback_share"], rng)
                committed[event_ids[0]] = time.time()
            except ViewFailed:
                rolled_back.add(event_ids[0])
            finally:
                COURSE_ENROLLMENT_CREATED.disconnect(dispatch_uid="demo-capture")
            if (index + 1) % 100 == 0 and not quiet:
                self.stdout.write(
                    f"      {index + 1}/{total} transactions, {len(committed)} committed, "
                    f"{OutboxEvent.objects.filter(status='pending').count()} pending in the outbox"
                )
            time.sleep(interval)
        return committed, rolled_back

    @staticmethod
    def _enroll(index, fail, rng):
        username = f"learner{index}"
        course = CourseKey.from_string(f"course-v1:DemoX+C{rng.randrange(10)}+2026")
        with transaction.atomic():
            Enrollment.objects.create(username=username, course_key=str(course))
            COURSE_ENROLLMENT_CREATED.send_event(
                enrollment=CourseEnrollmentData(
                    user=UserData(
                        id=index,
                        is_active=True,
                        pii=UserPersonalData(username=username, email=f"{username}@example.com", name=username),
                    ),
                    course=CourseData(course_key=course, display_name="Demo course"),
                    mode="audit",
                    is_active=True,
                    creation_date=datetime.now(UTC),
                )
            )
            if fail:
                raise ViewFailed()

    def _wait_for(self, committed, timeout):
        deadline, received = time.time() + timeout, {}
        while time.time() < deadline:
            received = self._received()
            if set(committed) <= set(received):
                break
            time.sleep(0.5)
        return received

    @staticmethod
    def _received():
        path = settings.DEMO_DIR / "received.jsonl"
        if not path.exists():
            return {}
        received = {}
        for line in path.read_text().splitlines():
            record = json.loads(line)
            received.setdefault(record["id"], record["at"])
        return received

    def _published(self, topic):
        """Event ids on the topic since the demo started, read straight from Kafka."""
        consumer = Consumer(
            {**common_client_config(), "group.id": f"demo-audit-{time.time()}", "enable.auto.commit": False}
        )
        consumer.assign([TopicPartition(topic, p, o) for p, o in self.start_offsets.items()])
        ids, idle_since, deadline = [], time.time(), time.time() + 120
        while time.time() - idle_since < 3 and time.time() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            idle_since = time.time()
            ids += [v.decode() for k, v in message.headers() if k == "ce_id"]
        consumer.close()
        return ids

    # ------------------------------------------------------------------ report

    def _summary(self, committed, rolled_back, published, received):
        lost = [e for e in committed if e not in received]
        phantom = [e for e in set(published) | set(received) if e in rolled_back]
        latencies = sorted(1000 * (received[e] - committed[e]) for e in committed if e in received)
        pct = (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]) if latencies else (lambda _q: 0)
        text = "\n".join(
            [
                "[4/4] summary",
                f"  committed transactions (events)  {len(committed)}",
                f"  rolled back                      {len(rolled_back)}",
                f"  published to {'Redis' if self.bus else 'Kafka'}               {len(set(published))} "
                f"(+{len(self.warm_up_ids)} warm-up, {len(published) - len(set(published))} duplicates)",
                f"  received by consume_events       {len(received)}",
                f"  lost                             {len(lost)}",
                f"  phantom (rolled back, published) {len(phantom)}",
                f"  commit -> received latency       p50 {pct(0.50):.0f} ms, p95 {pct(0.95):.0f} ms, "
                f"p99 {pct(0.99):.0f} ms, max {latencies[-1] if latencies else 0:.0f} ms"
                + (f" (mean {statistics.mean(latencies):.0f} ms)" if latencies else ""),
                f"  logs: {settings.DEMO_DIR}/relay.log, {settings.DEMO_DIR}/consumer.log",
            ]
        )
        return {"text": text, "lost": len(lost), "phantom": len(phantom)}


class RedisStream:
    """The demo's Redis side: the stream's end before the run, the consumer group's arrival, what was published."""

    def __init__(self):
        self.client = redis.Redis.from_url(settings.EVENT_BUS_REDIS_CONNECTION_URL, socket_timeout=30)

    def prepare(self, topic):
        """Remember the stream's last entry: the stream may be left from an earlier demo run."""
        last = self.client.xrevrange(stream_name(topic), count=1)
        self.start_id = last[0][0] if last else b"0-0"

    def wait_for_group(self, topic, group, log_dir, timeout=60):
        """edx-event-bus-redis's consumer creates its group at the stream's end; emit once it has."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.client.exists(stream_name(topic)):
                groups = self.client.xinfo_groups(stream_name(topic))
                if any(g["name"].decode() == group for g in groups):
                    return
            time.sleep(0.3)
        raise CommandError(
            f"consume_events did not create group {group!r} within {timeout}s; see {log_dir}/consumer.log"
        )

    def published(self, topic):
        """Event ids in the stream after the entry that was last before the demo started."""
        entries = self.client.xrange(stream_name(topic), min=f"({self.start_id.decode()}")
        return [fields[b"id"].decode() for _, fields in entries]
