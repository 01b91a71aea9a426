"""
Benchmark 9, concurrent writers (PostgreSQL): what the wake-up trigger costs when many requests commit events at once.

A commit that sends a NOTIFY takes a database-wide lock that serializes every notifying
commit (ADR 24). K writer processes each commit one event per transaction through our
``send()`` for a fixed time, started together, under each trigger, side by side in every
repetition (the order rotates):

* ``no trigger``      the trigger disabled: the floor;
* ``none waiting``    the trigger as installed (migration 0012), no relay waiting: a busy relay;
* ``relay waiting``   the same, with a live relay's presence row saying it waits, and a process
                      LISTENing: every commit sends a NOTIFY, as to an idle relay;
* ``0004 trigger``    the previous release's trigger: a NOTIFY from every inserting statement.

Reported: events committed per second by all writers, and each writer's median
``atomic()`` + ``send()`` + COMMIT, medians over repetitions; ratios to ``no trigger`` per repetition.

On this machine the writers' Python shares the two cores with PostgreSQL, which hides much
of the lock. The same is then run with **SQL writers**: each commits a copy of an outbox row
(``INSERT ... SELECT`` with a new ``event_id``: every index and the trigger, no Python work),
as writers on other hosts would load the database.

``python -m bench.concurrent_writers --writer KIND TOPIC SECONDS START_AT`` is one writer process
(KIND ``send`` or ``sql``).
"""

import os
import subprocess
import sys
import time
import uuid

from bench import common
from bench.common import log, median

TABLE = "edx_event_bus_outbox_event"
TRIGGER = "edx_event_bus_outbox_notify"
PREVIOUS = "bench_notify_every_insert"  # migration 0004's trigger, under another name
MODES = ("no trigger", "none waiting", "relay waiting", "0004 trigger")
KINDS = {"send": "writers calling send() in Python", "sql": "SQL writers (INSERT ... SELECT, no Python work)"}
LISTENER = """
import sys, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
conn.execute("LISTEN edx_event_bus_outbox")
print("listening", flush=True)
for _ in conn.notifies():
    pass
"""


def writer(kind, topic, seconds, start_at):
    """Commit events one per transaction from ``start_at`` for ``seconds``; print the count and median µs."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    commit_one = _send_writer(topic) if kind == "send" else _sql_writer()
    print("ready", flush=True)
    time.sleep(max(0.0, start_at - time.time()))
    took, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        began = time.perf_counter_ns()
        commit_one(len(took))
        took.append(time.perf_counter_ns() - began)
    print(len(took), median(took) / 1000, flush=True)


def _send_writer(topic):
    from django.db import transaction

    from edx_event_bus_outbox import create_producer

    send, signal, pool = create_producer().send, common.signal(), common.make_event_data(100)
    common.execute("SELECT 1")  # connect before the start

    def commit_one(index):
        with transaction.atomic():
            send(
                signal=signal,
                topic=topic,
                event_key_field=common.KEY_FIELD,
                event_data=pool[index % len(pool)],
                event_metadata=common.metadata(),
            )

    return commit_one


def _sql_writer():
    import psycopg

    from edx_event_bus_outbox.models import OutboxEvent

    columns = [f.column for f in OutboxEvent._meta.concrete_fields if f.column not in ("id", "event_id")]
    listed = ", ".join(f'"{column}"' for column in columns)  # "offset" is a keyword
    statement = (
        f"INSERT INTO {TABLE} (event_id, {listed}) SELECT gen_random_uuid(), {listed} FROM {TABLE} WHERE id = %s"
    )
    connection = psycopg.connect(common.pg_url())
    template = connection.execute(f"SELECT min(id) FROM {TABLE}").fetchone()[0]
    connection.commit()

    def commit_one(_index):
        connection.execute(statement, [template])
        connection.commit()

    return commit_one


def _set_mode(mode):
    """Install ``mode``'s trigger (and presence row); returns the row's token, if any."""
    common.execute(
        f"ALTER TABLE {TABLE} {'ENABLE' if mode in ('none waiting', 'relay waiting') else 'DISABLE'} TRIGGER {TRIGGER}"
    )
    common.execute(f"ALTER TABLE {TABLE} {'ENABLE' if mode == '0004 trigger' else 'DISABLE'} TRIGGER {PREVIOUS}")
    if mode == "relay waiting":
        token = uuid.uuid4().hex
        common.execute(
            "INSERT INTO edx_event_bus_outbox_relay (token, holder, expires_at, waiting) "
            "VALUES (%s, 'bench', now() + interval '1 hour', true)",
            [token],
        )
        return token
    return None


def _install_previous_trigger():
    common.execute(
        f"CREATE OR REPLACE FUNCTION {PREVIOUS}() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_notify('edx_event_bus_outbox', ''); RETURN NULL; END; $$"
    )
    common.execute(f"DROP TRIGGER IF EXISTS {PREVIOUS} ON {TABLE}")
    common.execute(
        f"CREATE TRIGGER {PREVIOUS} AFTER INSERT ON {TABLE} FOR EACH STATEMENT EXECUTE FUNCTION {PREVIOUS}()"
    )


def _remove_previous_trigger():
    common.execute(f"DROP TRIGGER IF EXISTS {PREVIOUS} ON {TABLE}")
    common.execute(f"DROP FUNCTION IF EXISTS {PREVIOUS}()")
    common.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {TRIGGER}")


def _one_run(kind, topic, writers, seconds):
    """``writers`` processes, started together; returns (events/s of all, median of their median µs)."""
    start_at = time.time() + 2.0 + 0.4 * writers  # each needs about a second to import Django and connect
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.concurrent_writers", "--writer", kind, topic, str(seconds), str(start_at)],
            stdout=subprocess.PIPE,
            text=True,
            env=common.child_env(),
        )
        for _ in range(writers)
    ]
    try:
        for process in processes:
            common.first_line(process, "a writer")
        results = [process.communicate(timeout=seconds + 120)[0].split() for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    if any(p.returncode for p in processes):
        raise RuntimeError("a writer failed")
    return sum(int(r[0]) for r in results) / seconds, median([float(r[1]) for r in results])


def run(quick=False):
    common.setup_django()
    if common.vendor() != "postgresql":
        raise RuntimeError("concurrent_writers measures PostgreSQL's NOTIFY; run it with BENCH_DB=postgres")
    counts, reps, seconds = ((1, 4), 2, 2.0) if quick else ((1, 4, 8), 3, 3.0)
    log(f"concurrent writers: {reps} repetitions x writers {counts} x {len(MODES)} triggers, {seconds:g} s each")
    topic = common.topic_name("writers")
    listener = subprocess.Popen([sys.executable, "-c", LISTENER, common.pg_url()], stdout=subprocess.PIPE, text=True)
    common.first_line(listener, "the LISTEN process")
    cases = [(kind, k) for kind in KINDS for k in counts]
    rate = {(kind, k, m): [] for kind, k in cases for m in MODES}
    latency = {(kind, k, m): [] for kind, k in cases for m in MODES}
    try:
        _install_previous_trigger()
        for rep in range(reps):
            for kind, k in cases:
                order = MODES[rep % len(MODES) :] + MODES[: rep % len(MODES)]
                for mode in order:
                    common.reset_tables()
                    _set_mode("no trigger")
                    common.write_events_with_send(topic, common.make_event_data(1), per_transaction=1)  # the template
                    _set_mode(mode)
                    per_second, median_us = _one_run(kind, topic, k, seconds)
                    rate[kind, k, mode].append(per_second)
                    latency[kind, k, mode].append(median_us)
                log(
                    f"  rep {rep + 1}/{reps}, {k} {kind} writers: "
                    + ", ".join(f"{m}={rate[kind, k, m][-1]:.0f}/s" for m in MODES)
                )
    finally:
        listener.terminate()
        listener.wait(10)
        _remove_previous_trigger()
        common.reset_tables()
    return {
        "name": "concurrent_writers",
        "writers": list(counts),
        "reps": reps,
        "seconds": seconds,
        "kinds": list(KINDS),
        "events_per_second": {f"{kind}/{k}/{m}": median(rate[kind, k, m]) for kind, k in cases for m in MODES},
        "median_commit_us": {f"{kind}/{k}/{m}": median(latency[kind, k, m]) for kind, k in cases for m in MODES},
        "ratio_to_no_trigger": {
            f"{kind}/{k}/{m}": median(
                [a / b for a, b in zip(rate[kind, k, m], rate[kind, k, "no trigger"], strict=True)]
            )
            for kind, k in cases
            for m in MODES
        },
    }


def report(result):
    lines = [
        f"9. CONCURRENT WRITERS (PostgreSQL): events committed per second by all writers (ratio to no trigger),"
        f" and a writer's median atomic()+send()+COMMIT; {result['reps']} reps x {result['seconds']:g} s",
        f"   {'writers':<8}" + "".join(f"{m:>26}" for m in MODES),
    ]
    for kind in result["kinds"]:
        lines.append(f"   {KINDS[kind]}:")
        for k in result["writers"]:
            rate, ratio, took = (
                {m: result[figure][f"{kind}/{k}/{m}"] for m in MODES}
                for figure in ("events_per_second", "ratio_to_no_trigger", "median_commit_us")
            )
            cells = [f"{rate[m]:7.0f}/s ({ratio[m]:.2f}) {took[m]:5.0f}µs" for m in MODES]
            lines.append(f"   {k:<8}" + "".join(f"{c:>26}" for c in cells))
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--writer"]:
        writer(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
    else:
        common.main(run, report, __doc__.splitlines()[1])
