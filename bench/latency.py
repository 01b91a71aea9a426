"""
Benchmark 3, commit-to-acknowledgement latency on PostgreSQL.

Four writer processes (``bench.latency_writer``) commit one event per transaction through our
``send()``, each at 125 events/s on an interleaved schedule, so 500 events/s in all, for ~20 s,
and record ``time.time()`` right after each COMMIT returns (one Python process cannot keep a
steady 500 transactions/s on this 2-core machine). The relay runs as a subprocess,
``manage.py run_outbox_relay --lane TOPIC``, with its defaults (LISTEN/NOTIFY on, batch 500,
poll interval 1 s), started and warmed before the clock starts. A reader subprocess
(``bench.ack_reader``) consumes the topic.

Latency of an event = acknowledgement time - commit time, with the acknowledgement time taken
three ways (all clocks are this host's):

* ack      when the relay's ``publish()`` of the event's batch returned: every delivery report
           arrived and, with exactly-once publication (the relay's default, ADR 20), the batch's
           Kafka transaction committed, so ``read_committed`` consumers can read it. This is the
           figure held to the goal.
* broker   the message's broker timestamp: the topic uses ``LogAppendTime``, so it is when the
           broker appended the message to its log, which on a single-replica topic is when it
           sends the ack (acks=all). Millisecond resolution. In a transaction this comes before
           the commit, and a ``read_committed`` reader cannot see the message yet.
* reader   when the reader process, ``read_committed`` as librdkafka's consumers are by
           default, received the message: an upper bound (adds the fetch).
* sent_at  the row's ``sent_at``, which the relay sets after the whole batch was acknowledged,
           just before its UPDATE: an upper bound that includes the relay's batch wait.

The relay runs through ``bench.relay_traced``, which is ``manage.py run_outbox_relay`` plus a
timestamp per batch (claim, publish, mark), so the report can say where the latency goes:
commit -> the relay's SELECT returned the row (notification, wake-up, lease renewal, the batch
before it), -> broker append (encode, produce, network), -> ``publish`` returned (the ack
travelling back and ``flush`` returning).
"""

import json
import os
import signal as signals
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import common
from bench.common import KEY_FIELD, ROOT, log, median, percentile

RATE = 500
WRITERS = 4


# The relay's two publication modes, measured alternately in one run (ADR 20): the default first.
MODES = {"exactly-once": "--exactly-once", "at-least-once": "--no-exactly-once"}


def _start_relay(topic, trace_path, log_path, mode):
    command = [sys.executable, "-m", "bench.relay_traced", str(trace_path)]
    return subprocess.Popen(
        [*command, "--lane", topic, MODES[mode]],
        cwd=ROOT,
        env=common.child_env(),
        stdout=open(log_path, "ab"),
        stderr=subprocess.STDOUT,
    )


def _start_reader(topic, out_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.ack_reader", common.kafka_settings()[0], topic, str(out_path)],
        cwd=ROOT,
        env=common.child_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    if common.first_line(process, "the latency reader") != "ready":
        raise RuntimeError("the latency reader did not start")
    return process


def _received(out_path):
    rows = {}
    try:
        text = Path(out_path).read_text(encoding="utf-8")
    except OSError:
        return rows
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[0]:
            rows[parts[0]] = (float(parts[1]), int(parts[2]) / 1000.0)
    return rows


class Writer:
    def __init__(self, pool):

        from django.db import transaction

        from edx_event_bus_outbox import create_producer

        self.send = create_producer().send
        self.atomic = transaction.atomic
        self.signal = common.signal()
        self.pool = pool

    def write(self, topic, count_, rate):
        """Commit ``count_`` events at ``rate``/s; returns ``{ce_id: commit time}`` and the achieved rate."""
        commits = {}
        start = time.perf_counter()
        for index in range(count_):
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            meta = common.metadata()
            with self.atomic():
                self.send(
                    signal=self.signal,
                    topic=topic,
                    event_key_field=KEY_FIELD,
                    event_data=self.pool[index % len(self.pool)],
                    event_metadata=meta,
                )
            commits[str(meta.id)] = time.time()
        return commits, count_ / (time.perf_counter() - start)


def _write_in_processes(topic, seconds, workdir, tag):
    """``WRITERS`` processes, each at RATE/WRITERS events/s, interleaved; ``({ce_id: commit time}, rate)``."""
    per_writer = int(RATE * seconds / WRITERS)
    start_at = time.time() + 3.0  # after every writer has set Django up
    paths = [Path(workdir) / f"{tag}-writer{i}.tsv" for i in range(WRITERS)]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.latency_writer",
                topic,
                str(RATE / WRITERS),
                str(per_writer),
                str(start_at),
                str(i / RATE),
                str(path),
            ],
            cwd=ROOT,
            env=common.child_env(),
        )
        for i, path in enumerate(paths)
    ]
    for process in processes:
        if process.wait(seconds * 10 + 60) != 0:
            raise RuntimeError("a latency writer failed")
    commits = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            ce_id, committed = line.split("\t")
            commits[ce_id] = float(committed)
    first, last = min(commits.values()), max(commits.values())
    return commits, (len(commits) - 1) / (last - first) if last > first else float("nan")


def _wait_for(out_path, ids, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        received = _received(out_path)
        if all(i in received for i in ids):
            return received
        time.sleep(0.25)
    return _received(out_path)


def measure(topic, seconds, writer, workdir, tag, mode):
    """One repetition: start relay (in ``mode``) and reader, warm, write at RATE for ``seconds``, collect."""
    out_path = Path(workdir) / f"{tag}.tsv"
    trace_path = Path(workdir) / f"{tag}-trace.jsonl"
    relay = _start_relay(topic, trace_path, Path(workdir) / f"{tag}-relay.log", mode)
    reader = _start_reader(topic, out_path)
    try:
        warm, _ = writer.write(topic, 50, 50)
        if len(_wait_for(out_path, warm, 60)) < len(warm):
            raise RuntimeError(f"relay did not deliver the warm-up events; see {workdir}/{tag}-relay.log")
        time.sleep(1.0)
        commits, achieved = _write_in_processes(topic, seconds, workdir, tag)
        backlog_at_end = common.count(
            "SELECT count(*) FROM edx_event_bus_outbox_event WHERE topic = %s AND status = 'pending'", [topic]
        )
        received = _wait_for(out_path, commits, 180)
    finally:
        relay.send_signal(signals.SIGTERM)
        reader.send_signal(signals.SIGTERM)
        for process, patience in ((relay, 60), (reader, 30)):
            try:
                process.wait(patience)
            except subprocess.TimeoutExpired:
                process.kill()  # it ignored SIGTERM: never leave it running, never wait for ever
                process.wait(30)
    sent_at = dict(
        common.execute(
            "SELECT event_id::text, extract(epoch from sent_at) FROM edx_event_bus_outbox_event "
            "WHERE topic = %s AND event_id = ANY(%s::uuid[])",
            [topic, list(commits)],
            fetch=True,
        )
    )
    batches = {}
    batch_sizes = []
    try:
        for line in trace_path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            batch_sizes.append(len(record["ids"]))
            for ce_id in record["ids"]:
                batches[ce_id] = record
    except OSError:
        pass
    broker, reader_ms, sent_ms = [], [], []
    ack, to_claim, claim_to_append, append_to_publish_end, mark = [], [], [], [], []
    for ce_id, committed in commits.items():
        if ce_id in received:
            receive_time, append_time = received[ce_id]
            broker.append(1000 * (append_time - committed))
            reader_ms.append(1000 * (receive_time - committed))
            batch = batches.get(ce_id)
            if batch and "publish_end" in batch:
                ack.append(1000 * (batch["publish_end"] - committed))
                to_claim.append(1000 * (batch["claim_end"] - committed))
                claim_to_append.append(1000 * (append_time - batch["claim_end"]))
                append_to_publish_end.append(1000 * (batch["publish_end"] - append_time))
                if "mark_end" in batch:
                    mark.append(1000 * (batch["mark_end"] - batch["publish_end"]))
        if sent_at.get(ce_id) is not None:
            sent_ms.append(1000 * (float(sent_at[ce_id]) - committed))

    def pcts(values):
        return {
            "p50": percentile(values, 50),
            "p95": percentile(values, 95),
            "p99": percentile(values, 99),
            "max": max(values) if values else float("nan"),
        }

    return {
        "events": len(commits),
        "delivered": len(broker),
        "achieved_rate": achieved,
        "backlog_at_end": backlog_at_end,
        "ack": pcts(ack),
        "broker": pcts(broker),
        "reader": pcts(reader_ms),
        "sent_at": pcts(sent_ms),
        "commit_to_claim": pcts(to_claim),
        "claim_to_append": pcts(claim_to_append),
        "append_to_publish_end": pcts(append_to_publish_end),
        "mark_after_ack": pcts(mark),
        "batches": len(batch_sizes),
        "median_batch": median(batch_sizes) if batch_sizes else float("nan"),
    }


WAYS = (
    "ack",
    "broker",
    "reader",
    "sent_at",
    "commit_to_claim",
    "claim_to_append",
    "append_to_publish_end",
    "mark_after_ack",
)


def run(quick=False):
    common.setup_django()
    seconds = 8 if quick else 20
    reps = 2 if quick else 5
    log(f"latency: {reps} repetitions x {seconds} s at {RATE} events/s from {WRITERS} writer processes, per mode")
    common.reset_tables()
    topic = common.create_topic(common.topic_name("latency"), config={"message.timestamp.type": "LogAppendTime"})
    writer = Writer(common.make_event_data(200))
    runs = {mode: [] for mode in MODES}
    workdir = tempfile.mkdtemp(prefix="bench-latency-")
    for rep in range(reps):
        for mode in MODES if rep % 2 == 0 else reversed(MODES):  # alternated: neither always goes first
            result, _ = common.guarded(f"latency rep {rep + 1} {mode}")(
                lambda rep=rep, mode=mode: measure(topic, seconds, writer, workdir, f"rep{rep}-{mode}", mode)
            )
            runs[mode].append(result)
            log(
                f"  rep {rep + 1}/{reps} {mode}: ack p50/p95/p99 = "
                + "/".join(f"{result['ack'][p]:.1f}" for p in ("p50", "p95", "p99"))
                + f" ms, {result['achieved_rate']:.0f} ev/s written, backlog at end {result['backlog_at_end']}"
            )
    common.reset_tables()
    out = {"name": "latency", "rate": RATE, "seconds": seconds, "writers": WRITERS, "logs": workdir, "reps": reps}
    out["modes"] = {mode: _summary(mode_runs) for mode, mode_runs in runs.items()}
    out.update(out["modes"]["exactly-once"])  # the default, held to the goal
    return out


def _summary(runs):
    out = {way: {p: median([r[way][p] for r in runs]) for p in ("p50", "p95", "p99", "max")} for way in WAYS}
    out["runs"] = runs
    out["achieved_rate"] = median([r["achieved_rate"] for r in runs])
    out["delivered"] = sum(r["delivered"] for r in runs)
    out["events"] = sum(r["events"] for r in runs)
    out["backlog_at_end"] = median([r["backlog_at_end"] for r in runs])
    out["median_batch"] = median([r["median_batch"] for r in runs])
    return out


def report(result):
    goal = result["ack"]["p50"] <= 10 and result["ack"]["p99"] <= 50

    def row(label, way, source=result):
        figures = source[way]
        return f"   {label:<52} {figures['p50']:8.1f} {figures['p95']:8.1f} {figures['p99']:8.1f} {figures['max']:9.1f}"

    lines = [
        f"3. LATENCY: commit -> broker acknowledgement, ms, at {result['rate']} events/s for "
        f"{result['seconds']} s ({result['writers']} writer processes, one event per transaction), relay subprocess "
        f"with LISTEN/NOTIFY; median over {result['reps']} repetitions of each percentile; exactly-once (the "
        "default) unless said",
        f"   {'':<52} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>9}",
        row("commit -> batch acknowledged and committed (the goal)", "ack"),
        row("  the same, at-least-once (--no-exactly-once)", "ack", result["modes"]["at-least-once"]),
        row("commit -> broker append time (before the Kafka commit)", "broker"),
        row("commit -> read_committed reader got it (upper bound)", "reader"),
        row("commit -> row sent_at (upper bound)", "sent_at"),
        "   where it goes (per event; relay trace, same clocks):",
        row("  commit -> relay's SELECT returned the row", "commit_to_claim"),
        row("  SELECT returned -> broker append (encode, produce)", "claim_to_append"),
        row("  broker append -> publish() returned (ack, flush)", "append_to_publish_end"),
        row("  (after the ack: marking the batch sent)", "mark_after_ack"),
        f"   goal p50 <= 10 ms and p99 <= 50 ms (acknowledged and committed): {'MET' if goal else 'NOT MET'}",
        f"   writers achieved {result['achieved_rate']:.0f} events/s (median); pending rows when they stopped: "
        f"{result['backlog_at_end']:.0f}; median batch {result['median_batch']:.0f} rows; delivered "
        f"{result['delivered']}/{result['events']}",
        "   per repetition, ack p50/p99 ms: "
        + "; ".join(
            f"{r['ack']['p50']:.1f}/{r['ack']['p99']:.1f} at {r['achieved_rate']:.0f} ev/s" for r in result["runs"]
        ),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", common.SETTINGS_MODULE)
    common.main(run, report, __doc__.splitlines()[1])
