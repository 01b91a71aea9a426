"""
``python -m chaos.run --db postgres|mysql [--sink redis]``: one seeded, time-bounded chaos run.

Writers commit, roll back and raise; two relay processes (an active one and a standby)
drain the outbox; meanwhile the controller SIGKILLs relays at random moments, restarts the
broker, stops and starts the registry, and restarts the database. Afterwards it reads the
topic and counts committed, published, lost, phantom, duplicates and per-key reorders.
Exit 0 when lost, phantom and reorders are all 0 and duplicates stay bounded; to Kafka with
exactly-once publication (the relay's default, ADR 20), when duplicates are 0 too.

``--kills N`` adds N relay SIGKILLs at random moments to the ``--faults``; ``pause_relay``
SIGSTOPs a relay for longer than its lease, so that the standby takes its lanes over, and
then lets it run on: a zombie that the database lease and the broker's fence must stop.

With ``--sink redis`` the relays publish to Redis Streams instead: a ``redis-server`` of the
run's own (append-only, fsynced on every write, as a Redis that carries an event bus should
be), SIGKILLed and restarted in place of the broker and the registry.
"""

import argparse
import atexit
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACTIONS = {
    "kafka": (
        "kill_relay",
        "kill_relay",
        "kill_relay",
        "restart_broker",
        "bounce_registry",
        "restart_database",
        "pause_relay",
    ),
    "redis": ("kill_relay", "kill_relay", "kill_relay", "restart_redis", "restart_redis", "restart_database"),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["postgres", "mysql"], required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--transactions", type=int, default=3000, help="Per writer (2 writers).")
    parser.add_argument("--keys", type=int, default=12)
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds the writers spread their work over.")
    parser.add_argument("--faults", type=int, default=8, help="Fault injections, at random times in --duration.")
    parser.add_argument("--kills", type=int, default=0, help="Relay SIGKILLs at random times, besides --faults.")
    parser.add_argument(
        "--exactly-once",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Relays publish to Kafka exactly once (the default; then any duplicate fails the run), or not.",
    )
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lease-seconds", type=float, default=4.0)
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--report", help="Append the verdict as a JSON line to this file.")
    parser.add_argument("--sink", choices=sorted(ACTIONS), default="kafka", help="Where the relays publish.")
    parser.add_argument(
        "--actions", help="Comma-separated faults to draw from (default: all of the sink's, see ACTIONS)."
    )
    args = parser.parse_args(argv)
    args.actions = args.actions.split(",") if args.actions else list(ACTIONS[args.sink])
    unknown = set(args.actions) - set(ACTIONS[args.sink])
    if unknown:
        parser.error(f"--actions: {', '.join(sorted(unknown))} not among {', '.join(sorted(set(ACTIONS[args.sink])))}")
    return args


def configure_django(args, database_name):
    os.environ.update(
        OUTBOX_TEST_DB=args.db,
        OUTBOX_TEST_DB_NAME=database_name,
        DJANGO_SETTINGS_MODULE="chaos.redis_settings" if args.sink == "redis" else "tests.settings",
        EVENT_BUS_KAFKA_AUDIT_LOGGING_ENABLED="",
    )
    import django

    django.setup()
    from django.conf import settings

    settings.EVENT_BUS_KAFKA_AUDIT_LOGGING_ENABLED = False


class Relays:
    """The relay processes: one or two alive at any time, replaced as they are killed."""

    def __init__(self, args, topic, log_dir):
        self.args, self.topic, self.log_dir = args, topic, log_dir
        self.processes, self.started, self.killed = [], 0, 0

    def start(self):
        self.started += 1
        log = open(self.log_dir / f"relay-{self.started}.log", "wb")
        self.processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "manage.py"),
                    "run_outbox_relay",
                    "--lane",
                    self.topic,
                    "--batch-size",
                    str(self.args.batch_size),
                    "--lease-seconds",
                    str(self.args.lease_seconds),
                    "--poll-interval",
                    "0.5",
                    "--exactly-once" if self.args.exactly_once else "--no-exactly-once",
                ],
                cwd=ROOT,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )

    def kill_one(self, rng):
        alive = [p for p in self.processes if p.poll() is None]
        victim = rng.choice(alive)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        self.killed += 1
        self.start()

    def pause_one(self, rng):
        """SIGSTOP a relay for a lease and a half, then SIGCONT it: its lanes were taken over meanwhile."""
        victim = rng.choice([p for p in self.processes if p.poll() is None])
        victim.send_signal(signal.SIGSTOP)
        time.sleep(self.args.lease_seconds * 1.5)
        victim.send_signal(signal.SIGCONT)

    def stop_all(self):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()  # a relay that ignores SIGTERM must not outlive the run
                process.wait(timeout=30)


def stack(action, service):
    subprocess.run(
        ["bash", str(ROOT / "stack" / "stack.sh"), action, service], check=True, capture_output=True, timeout=300
    )


def inject(action, relays, args, rng, redis_server=None):
    from chaos.database import STACK_SERVICE

    if action == "restart_redis":
        redis_server.stop(signal.SIGKILL)
        time.sleep(rng.uniform(1, 4))
        redis_server.start()
    elif action == "kill_relay":
        relays.kill_one(rng)
    elif action == "pause_relay":
        relays.pause_one(rng)
    elif action == "restart_broker":
        stack("restart", "kafka")
    elif action == "bounce_registry":
        stack("stop", "registry")
        time.sleep(rng.uniform(1, 4))
        stack("start", "registry")
    elif action == "restart_database":
        stack("restart", STACK_SERVICE[args.db])


def start_redis(log_dir):
    """The run's own redis-server; its URL reaches the relays through chaos.redis_settings."""
    from tests.redis_tools import PrivateRedis

    server = PrivateRedis(log_dir).start()
    atexit.register(server.stop, signal.SIGKILL)  # whatever happens to the run
    os.environ["CHAOS_REDIS_URL"] = server.url
    return server


def wait_until_drained(timeout):
    from django.db import connection

    from edx_event_bus_outbox.models import OutboxEvent

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not OutboxEvent.objects.filter(status="pending").exists():
                return True
        except Exception:  # noqa: BLE001  the database may be down on purpose
            connection.close()
        time.sleep(1)
    return False


def main(argv=None):
    args = parse_args(argv)
    started = time.monotonic()
    rng = random.Random(args.seed)
    run_id = f"chaos-{args.db}-{args.seed}-{uuid.uuid4().hex[:6]}"
    sys.path.insert(0, str(ROOT))
    from tests.stack_env import load_stack_env

    load_stack_env()
    from chaos import database

    database_name = run_id.replace("-", "_")
    database.recreate(args.db, database_name)
    log_dir = ROOT / ".stack" / "chaos" / run_id
    log_dir.mkdir(parents=True, exist_ok=True)
    redis_server = start_redis(log_dir) if args.sink == "redis" else None
    configure_django(args, database_name)
    from django.core.management import call_command

    from chaos.writer import Ledger, run_writer
    from tests.kafka_tools import StackClients
    from tests.outbox_tools import KEY_FIELD
    from tests.redis_tools import stream_messages
    from tests.relay.checker import check

    call_command("migrate", verbosity=0)

    topic = run_id
    if args.sink == "kafka":
        kafka = StackClients(
            os.environ["EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"], os.environ["EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL"]
        )
        kafka.create_topic(topic, partitions=3)
    print(
        f"chaos run {run_id}: seed={args.seed} db={args.db} sink={args.sink} writers=2x{args.transactions} "
        f"kills={args.kills} exactly_once={args.exactly_once} faults={args.faults} "
        f"from {','.join(sorted(set(args.actions)))}",
        flush=True,
    )

    ledger = Ledger()
    keys = list(range(args.keys))
    pause = args.duration / args.transactions
    writers = [
        threading.Thread(
            target=run_writer,
            daemon=True,  # daemon: a stuck writer cannot keep us alive
            args=(topic, keys[n::2], args.transactions, args.seed * 10 + n, ledger, pause),
        )
        for n in range(2)
    ]
    relays = Relays(args, topic, log_dir)
    relays.start()
    relays.start()  # the standby
    for writer in writers:
        writer.start()
    try:
        began = time.monotonic()
        faults = [(rng.uniform(1, args.duration), rng.choice(args.actions)) for _ in range(args.faults)]
        faults += [(rng.uniform(1, args.duration), "kill_relay") for _ in range(args.kills)]
        for number, (at, action) in enumerate(sorted(faults)):
            time.sleep(max(0.0, at - (time.monotonic() - began)))
            print(
                f"  fault {number + 1}/{len(faults)}: {action} ({len(ledger.committed)} committed so far)", flush=True
            )
            inject(action, relays, args, rng, redis_server)
        for writer in writers:
            writer.join(timeout=args.duration * 4 + 120)
        writers_finished = not any(writer.is_alive() for writer in writers)
        print(
            f"  writers done: {len(ledger.committed)} committed, {len(ledger.rolled_back)} rolled back, "
            f"{len(ledger.raised)} raised, {len(ledger.uncertain)} uncertain; draining",
            flush=True,
        )
        drained = wait_until_drained(args.drain_timeout)
    finally:
        relays.stop_all()

    if redis_server:
        messages = stream_messages(redis_server.url, topic, KEY_FIELD)
        redis_server.stop()
    else:
        messages = kafka.read_all(topic, timeout=120)
    published_ids = {v.decode() for m in messages for k, v in m.headers() if k == "ce_id"}
    certain = list(ledger.committed)
    verdict = check(
        [m for m in messages if _id(m) not in ledger.uncertain],
        certain,
        rolled_back_ids=ledger.rolled_back | ledger.raised,
    )
    exactly_once = args.sink == "kafka" and args.exactly_once
    duplicates_bound = 0 if exactly_once else (relays.started + args.faults) * args.batch_size
    result = {
        "run": run_id,
        "seed": args.seed,
        "db": args.db,
        "sink": args.sink,
        "exactly_once": exactly_once,
        "writers_finished": writers_finished,
        "drained": drained,
        "committed": len(certain),
        "rolled_back": len(ledger.rolled_back),
        "raised": len(ledger.raised),
        "uncertain": len(ledger.uncertain),
        "uncertain_published": len(ledger.uncertain & published_ids),
        "published": len(published_ids),
        "lost": len(verdict.lost),
        "phantom": len(verdict.phantom),
        "duplicates": verdict.duplicates,
        "duplicates_bound": duplicates_bound,
        "reorders": len(verdict.reorders),
        "stale_last": len(verdict.stale_last),
        "relays_started": relays.started,
        "relays_killed": relays.killed,
        "seconds": round(time.monotonic() - started, 1),
    }
    passed = writers_finished and drained and verdict.ok() and verdict.duplicates <= duplicates_bound
    result["passed"] = passed
    print("  " + " ".join(f"{k}={v}" for k, v in result.items()), flush=True)
    if args.report:
        with open(args.report, "a", encoding="utf-8") as report:
            report.write(json.dumps(result) + "\n")
    return 0 if passed else 1


def _id(message):
    return next(v.decode() for k, v in message.headers() if k == "ce_id")


if __name__ == "__main__":
    sys.exit(main())
