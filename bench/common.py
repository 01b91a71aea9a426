"""
What every benchmark shares: Django and database setup, the events, Kafka topics, statistics,
the description of the machine, and the report format.

Each benchmark module has ``run(quick) -> dict`` (a JSON-able result) and ``report(result) ->
str``, and can be run alone: ``python -m bench.<module> [--quick]``.
"""

import argparse
import gc
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
REPORT_DIR = ROOT / "bench-report"
SETTINGS_MODULE = "bench.settings"
RUN_ID = os.environ.get("BENCH_RUN_ID") or uuid.uuid4().hex[:8]
KEY_FIELD = "enrollment.course.course_key"
PARTITIONS = 3

_created_topics = []


# ---------------------------------------------------------------- Django and the database


def setup_django():
    """Configure Django on the bench settings and make sure the bench database is migrated."""
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    import django

    if getattr(setup_django, "done", False):
        return
    django.setup()
    ensure_database()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
    from openedx_events.tooling import load_all_signals

    load_all_signals()
    from tests.kafka_tools import give_edx_event_bus_kafka_our_registry_client

    give_edx_event_bus_kafka_our_registry_client()  # edx-event-bus-kafka's own client has no request timeout
    setup_django.done = True


def _maintenance_params():
    from django.conf import settings

    db = settings.DATABASES["default"]
    url = urlparse(os.environ.get("OUTBOX_TEST_POSTGRES_URL", ""))
    return dict(
        host=db["HOST"],
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"],
        dbname=url.path.lstrip("/") or "outbox",
    ), db["NAME"]


def vendor():
    """``postgresql``, ``mysql`` or ``sqlite``: the database the benchmark runs on (``BENCH_DB``)."""
    from django.db import connection

    return connection.vendor


def ensure_database():
    """Create the bench database (``outbox_bench``) on its server when it does not exist yet (SQLite: the file)."""
    if vendor() == "postgresql":
        import psycopg

        params, name = _maintenance_params()
        with psycopg.connect(**params, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
    elif vendor() == "mysql":
        import MySQLdb
        from django.conf import settings

        db = settings.DATABASES["default"]
        conn = MySQLdb.connect(host=db["HOST"], port=int(db["PORT"] or 3306), user=db["USER"], password=db["PASSWORD"])
        try:
            conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{db['NAME']}` CHARACTER SET utf8mb4")
        finally:
            conn.close()


def pg_url():
    """The bench database's URL, for a psycopg connection outside Django (PostgreSQL)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    return f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def execute(sql, params=None, fetch=False):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if fetch else None


def reset_tables():
    """Empty the outbox, the leases, jaiminho's events and the baseline table."""
    from django.conf import settings

    tables = [
        "edx_event_bus_outbox_event",
        "edx_event_bus_outbox_lease",
        "edx_event_bus_outbox_relay",
        "bench_plain_row",
    ]
    if settings.JAIMINHO_INSTALLED:
        tables.append("jaiminho_event")
    if vendor() == "postgresql":
        execute(f"TRUNCATE {', '.join(tables)}")
    else:  # one table per TRUNCATE on MariaDB; SQLite has only DELETE
        for table in tables:
            execute(f"{'TRUNCATE' if vendor() == 'mysql' else 'DELETE FROM'} {table}")


def vacuum_analyze(table="edx_event_bus_outbox_event"):
    """Fresh planner statistics after a bulk load (VACUUM needs autocommit, Django's default)."""
    execute(f"VACUUM ANALYZE {table}")


def count(sql, params=None):
    return execute(sql, params, fetch=True)[0][0]


def child_env(**extra):
    """Environment for a ``manage.py`` subprocess on the bench settings and database."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE=SETTINGS_MODULE, PYTHONUNBUFFERED="1")
    env.pop("OUTBOX_TEST_DB_NAME", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def first_line(process, what, timeout=60.0):
    """A child's first line of output; kills it and raises if it prints none within ``timeout`` seconds."""
    import select

    if not select.select([process.stdout], [], [], timeout)[0]:
        process.kill()
        process.wait(30)
        raise RuntimeError(f"{what} printed nothing within {timeout:g}s")
    return process.stdout.readline().strip()


# ---------------------------------------------------------------- events


def signal():
    from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED

    return COURSE_ENROLLMENT_CREATED


def make_event_data(count_, keys=50):
    """
    ``count_`` distinct ``COURSE_ENROLLMENT_CREATED`` payloads (nested attrs: enrollment ->
    user -> pii, course with a CourseKey, datetimes), spread over ``keys`` course keys.
    """

    from opaque_keys.edx.keys import CourseKey

    from tests.factories import CourseDataFactory, CourseEnrollmentDataFactory

    return [
        {
            "enrollment": CourseEnrollmentDataFactory(
                course=CourseDataFactory(course_key=CourseKey.from_string(f"course-v1:edX+Bench{index % keys}+Run"))
            )
        }
        for index in range(count_)
    ]


def metadata():
    from openedx_events.data import EventsMetadata

    return EventsMetadata(event_type=signal().event_type)


def write_events_with_send(topic, event_data, per_transaction=500):
    """Commit one outbox row per event through our ``send()``."""

    from django.db import transaction

    from edx_event_bus_outbox import create_producer

    producer = create_producer()
    sig = signal()
    for start in range(0, len(event_data), per_transaction):
        with transaction.atomic():
            for data in event_data[start : start + per_transaction]:
                producer.send(
                    signal=sig, topic=topic, event_key_field=KEY_FIELD, event_data=data, event_metadata=metadata()
                )


OUTBOX_COLUMNS = (
    "event_type",
    "event_key_field",
    "event_key",
    "payload",
    "payload_size",
    "event_time",
    "minorversion",
    "source",
    "sourcehost",
    "sourcelib",
    "status",
    "attempts",
    "last_error",
    "next_attempt_at",
    "sent_at",
    "partition",
    "offset",
)
SEED_TABLE = "bench_outbox_seed"
SEED_TOPIC = "bench-seed"
SEED_LANES = 4  # the seed rows carry the lane of their key for a topic of this many lanes (ADR 22)


def prepare_seed(event_data):
    """
    Write one outbox row per payload through our real ``send()`` and keep them in a side table
    (``bench_outbox_seed``), from which ``load_backlog`` clones large backlogs quickly. The
    outbox itself is left empty.
    """
    from django.test import override_settings

    reset_tables()
    with override_settings(EVENT_BUS_OUTBOX_TOPIC_LANES={SEED_TOPIC: SEED_LANES}):
        write_events_with_send(SEED_TOPIC, event_data)
    execute(f"DROP TABLE IF EXISTS {SEED_TABLE}")
    execute(
        f"CREATE TABLE {SEED_TABLE} AS SELECT * FROM edx_event_bus_outbox_event WHERE topic = %s ORDER BY id",
        [SEED_TOPIC],
    )
    reset_tables()


def load_backlog(topic, total, split=False, analyze=True):
    """
    Add ``total`` pending rows for ``topic`` in one INSERT ... SELECT (it goes through every index
    and the NOTIFY trigger, like any insert): the seed rows repeated in order, each copy with a
    fresh event id (``gen_random_uuid()``), so (event_id, topic) stays unique. Payloads, keys and
    metadata are byte-identical to what ``send()`` stored for the seed events. ``split``: the rows
    keep the seed's lanes, as for a topic of ``SEED_LANES`` lanes; else the topic is one lane.
    """
    seeds = count(f"SELECT count(*) FROM {SEED_TABLE}")
    rounds = -(-total // seeds)
    columns = ", ".join(f'"{c}"' for c in OUTBOX_COLUMNS)
    source_columns = ", ".join(f's."{c}"' for c in OUTBOX_COLUMNS)
    lanes = "s.lane_count, s.lane_index" if split else "1, 0"
    execute(
        f"INSERT INTO edx_event_bus_outbox_event (event_id, topic, created, lane_count, lane_index, {columns}) "
        f"SELECT gen_random_uuid(), %s, now(), {lanes}, {source_columns} "
        f"FROM generate_series(1, %s) AS g(round) CROSS JOIN {SEED_TABLE} AS s "
        f"ORDER BY g.round, s.id LIMIT %s",
        [topic, rounds, total],
    )
    if analyze:
        vacuum_analyze()


# ---------------------------------------------------------------- Kafka


def kafka_settings():
    from django.conf import settings

    return settings.EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS, settings.EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL


def topic_name(purpose):
    return f"bench-{RUN_ID}-{purpose}"


def create_topic(name, partitions=PARTITIONS, config=None):
    """A new topic whose partitions all have leaders, so the first produce does not wait or fail."""
    from edx_event_bus_outbox.kafka.topics import create_topics

    create_topics({"bootstrap.servers": kafka_settings()[0]}, {name: partitions}, topic_config=config)
    _created_topics.append(name)
    return name


def delete_created_topics():
    """Delete every topic this process created (they can hold up to a million messages)."""
    if not _created_topics:
        return
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": kafka_settings()[0]})
    for name, future in admin.delete_topics(list(_created_topics), operation_timeout=30).items():
        try:
            future.result(timeout=60)
        except Exception as exc:  # noqa: BLE001  cleanup is best effort
            print(f"  (could not delete topic {name}: {exc})", file=sys.stderr)
    _created_topics.clear()


def topic_message_count(name, patience=120.0):
    """
    Messages on a topic as ``read_committed`` consumers see them: read through, since with
    exactly-once publication the watermarks also count each transaction's commit markers, and
    a transaction's records become readable a moment after its commit returned. Re-read until
    two reads agree; retried while the broker restarts.
    """
    from confluent_kafka import KafkaException

    deadline = time.monotonic() + patience
    last = None
    while True:
        try:
            count = _read_through(name)
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
            continue
        if count == last or time.monotonic() > deadline:
            return count
        last = count
        time.sleep(0.2)


def _read_through(name):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_settings()[0],
            "group.id": f"bench-count-{uuid.uuid4().hex}",
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "fetch.max.bytes": 52428800,
        }
    )
    try:
        partitions = consumer.list_topics(name, timeout=10).topics[name].partitions
        consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in partitions])
        count, at_end, give_up_at = 0, set(), time.monotonic() + 120
        while len(at_end) < len(partitions):
            if time.monotonic() > give_up_at:
                raise TimeoutError(f"{name}: no end of partition {sorted(set(partitions) - at_end)} in 120 s")
            for message in consumer.consume(10000, timeout=1.0):
                if message.error() is None:
                    count += 1
                elif message.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
        return count
    finally:
        consumer.close()


# ---------------------------------------------------------------- a shared, noisy stack


def stack_pids():
    """PIDs of the stack's services: a change during a repetition means someone restarted one."""
    pids = {}
    for service in ("kafka", "registry", "postgres"):
        path = os.environ.get(f"STACK_{service.upper()}_PID_FILE") or str(ROOT / ".stack" / service / "pid")
        try:
            pids[service] = Path(path).read_text().strip()
        except OSError:
            pids[service] = None
    return pids


def wait_for_stack(timeout=300.0):
    """Block until the broker answers metadata requests and the registry lists subjects."""
    import requests
    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            AdminClient({"bootstrap.servers": kafka_settings()[0]}).list_topics(timeout=5)
            if requests.get(f"{kafka_settings()[1]}/subjects", timeout=5).ok:
                return
        except Exception:  # noqa: BLE001  best effort
            pass
        time.sleep(2)
    raise RuntimeError("the Kafka broker or the schema registry did not come back")


def guarded(label, attempts=3):
    """
    Run a repetition ``attempts`` times at most, discarding any try during which a stack service
    was restarted (its PID changed) or that raised: other sessions share this stack and restart
    its services in their failure tests. Returns ``(result, discarded tries)``.
    """

    def wrap(func):
        discarded = 0
        for _ in range(attempts):
            before = stack_pids()
            try:
                result = func()
            except Exception as exc:  # noqa: BLE001  any failure of a repetition is reported and retried
                log(f"  {label}: discarded ({type(exc).__name__}: {str(exc)[:160]}); waiting for the stack")
                discarded += 1
                wait_for_stack()
                continue
            if stack_pids() != before:
                log(f"  {label}: discarded (a stack service was restarted meanwhile: {before} -> {stack_pids()})")
                discarded += 1
                wait_for_stack()
                continue
            return result, discarded
        raise RuntimeError(f"{label}: {attempts} tries in a row were disturbed")

    return wrap


# ---------------------------------------------------------------- statistics


def median(values):
    return statistics.median(values) if values else float("nan")


def percentile(values, pct):
    """Linear-interpolation percentile (numpy's default), ``pct`` in 0..100."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def spread(values):
    """``min..max`` of a list of repetition results, to show the noise next to the median."""
    return f"{min(values):.1f}..{max(values):.1f}" if values else "-"


def quiet_gc():
    gc.collect()


# ---------------------------------------------------------------- the machine


def _read(path):
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _version(dist):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def _kafka_version():
    jars = os.environ.get("STACK_KAFKA_JARS", "")
    try:
        names = sorted(p.name for p in Path(jars).glob("kafka-server-[0-9]*.jar"))
    except OSError:
        names = []
    return names[0][len("kafka-server-") : -len(".jar")] if names else "unknown"


def _registry_version():
    import requests

    base = os.environ.get("STACK_REGISTRY_URL") or kafka_settings()[1].split("/apis/")[0]
    try:
        info = requests.get(f"{base}/apis/registry/v3/system/info", timeout=5).json()
        return f"{info.get('name')} {info.get('version')}"
    except Exception:  # noqa: BLE001  machine facts are best effort
        return "unknown"


def _database_description():
    """The server the benchmarks ran on (``BENCH_DB``), with the settings that set the price of a commit."""
    if vendor() == "postgresql":
        pg = execute(
            "SELECT version(), current_setting('synchronous_commit'), current_setting('fsync'), "
            "current_setting('shared_buffers'), current_setting('wal_level')",
            fetch=True,
        )[0]
        return (
            pg[0].split(" on ")[0] + f" (synchronous_commit={pg[1]}, fsync={pg[2]}, "
            f"shared_buffers={pg[3]}, wal_level={pg[4]})"
        )
    if vendor() == "mysql":
        row = execute("SELECT VERSION(), @@innodb_flush_log_at_trx_commit, @@sync_binlog, @@log_bin", fetch=True)[0]
        return f"MariaDB {row[0]} (innodb_flush_log_at_trx_commit={row[1]}, sync_binlog={row[2]}, log_bin={row[3]})"
    import sqlite3

    mode = execute("PRAGMA journal_mode", fetch=True)[0][0]
    return f"SQLite {sqlite3.sqlite_version} (file in {tempfile.gettempdir()}, journal_mode={mode})"


def machine_info():
    """Everything about the machine and the stack that the figures depend on."""
    import confluent_kafka

    cpuinfo = _read("/proc/cpuinfo")
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
        platform.processor() or "unknown",
    )
    mhz = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("cpu MHz")), "")
    meminfo = {
        line.split(":")[0]: line.split(":")[1].strip() for line in _read("/proc/meminfo").splitlines() if ":" in line
    }
    mem_kb = int(meminfo.get("MemTotal", "0 kB").split()[0])
    try:
        git = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except OSError:
        git = "unknown"
    return {
        "hostname": socket.gethostname(),
        "cpu": f"{model}" + (f" @ {float(mhz):.0f} MHz" if mhz else ""),
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "load_average_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "django": _version("Django"),
        "openedx_events": _version("openedx-events"),
        "edx_event_bus_kafka": _version("edx-event-bus-kafka"),
        "django_jaiminho": _version("django-jaiminho"),
        "confluent_kafka": f"{confluent_kafka.version()[0]} (librdkafka {confluent_kafka.libversion()[0]})",
        "kafka_broker": f"Apache Kafka {_kafka_version()} (single node, KRaft) at {kafka_settings()[0]}",
        "schema_registry": f"{_registry_version()} (Confluent API) at {kafka_settings()[1]}",
        "database": _database_description(),
        "git": git,
    }


def format_machine(info):
    width = max(len(k) for k in info)
    return "\n".join(f"  {k.replace('_', ' '):<{width}}  {v}" for k, v in info.items())


# ---------------------------------------------------------------- running a module alone


def main(module_run, module_report, description):
    """``python -m bench.<module> [--quick]``: run one benchmark and print its report."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repetitions")
    parser.add_argument("--json", help="also write the result as JSON to this file")
    args = parser.parse_args()
    setup_django()
    print(format_machine(machine_info()), flush=True)
    try:
        result = module_run(quick=args.quick)
    finally:
        delete_created_topics()
    print(module_report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))


def log(message):
    """Progress on stderr, so that stdout carries only the report."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
