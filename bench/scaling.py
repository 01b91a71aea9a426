"""
Benchmark 8, one topic drained by several relays: the drain rate of a topic split into 4 lanes
(ADR 22) with 1, 2 and 4 relay processes, and the CPU time each process spends per event.

Each repetition, for each number of relays (the order rotating per repetition): start that many
``manage.py run_outbox_relay`` processes (no ``--lane``, defaults: exactly-once, batch 500) on an
empty outbox and wait until each has announced itself (ADR 21); read the CPU time of every
process; add N pending rows in one INSERT ... SELECT, whose commit wakes the relays (NOTIFY);
time from that commit until no row is pending; read the CPU times again; stop the relays; check
that N messages reached Kafka. CPU times come from ``/proc/PID/stat`` (user + system): the relay
processes, PostgreSQL (the postmaster's children: the relays' backends and the bench's own),
and Kafka (the broker's JVM, every thread). The schema registry is idle: every schema id is
known after the first batch of each relay.
"""

import os
import signal as signals
import subprocess
import sys
import time
from pathlib import Path

from bench import common
from bench.common import ROOT, log, median

RELAYS = (1, 2, 4)
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid) -> float:
    """User + system CPU time of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _children(parent) -> list:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(entry.name))
            except (OSError, ValueError):
                continue  # it ended meanwhile
    return found


def _service_pid(service) -> int:
    path = os.environ.get(f"STACK_{service.upper()}_PID_FILE") or str(ROOT / ".stack" / service / "pid")
    return int(Path(path).read_text().split()[0])


def _cpu(relays) -> dict:
    postgres = _service_pid("postgres")
    backends = [postgres, *_children(postgres)]
    return {
        "relays": [_cpu_seconds(relay.pid) for relay in relays],
        "postgres": sum(_cpu_seconds(pid) for pid in backends if Path(f"/proc/{pid}").exists()),
        "kafka": _cpu_seconds(_service_pid("kafka")),
    }


def _start_relays(count, workdir, tag):
    return [
        subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "run_outbox_relay", "--poll-interval", "0.5"],
            cwd=ROOT,
            env=common.child_env(),
            stdout=open(Path(workdir) / f"{tag}-relay{n}.log", "ab"),
            stderr=subprocess.STDOUT,
        )
        for n in range(count)
    ]


def _stop(relays):
    for relay in relays:
        relay.send_signal(signals.SIGTERM)
    for relay in relays:
        try:
            relay.wait(60)
        except subprocess.TimeoutExpired:
            relay.kill()
            relay.wait(30)


def _wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"scaling: {what} within {timeout:.0f} s")
        time.sleep(0.05)


def measure(topic, n, count, workdir, tag):
    """One drain of ``n`` rows by ``count`` relays: rate and CPU seconds per event of each process."""
    common.reset_tables()
    relays = _start_relays(count, workdir, tag)
    try:
        running = "SELECT count(*) FROM edx_event_bus_outbox_relay WHERE expires_at > now()"
        _wait_until(lambda: common.count(running) == count, 60, f"{count} relays did not announce themselves")
        before, delivered_before = _cpu(relays), common.topic_message_count(topic)
        common.load_backlog(topic, n, split=True, analyze=False)  # committed: the relays wake now
        started = time.monotonic()
        pending = "SELECT EXISTS (SELECT 1 FROM edx_event_bus_outbox_event WHERE status = 'pending')"
        _wait_until(lambda: not common.count(pending), 600, "the backlog was not drained")
        seconds = time.monotonic() - started
        after = _cpu(relays)
        holders = common.execute(
            "SELECT holder, count(*) FROM edx_event_bus_outbox_lease GROUP BY holder ORDER BY 2 DESC", fetch=True
        )
    finally:
        _stop(relays)
    delivered = common.topic_message_count(topic) - delivered_before
    if delivered != n:
        raise RuntimeError(f"scaling: {n} rows drained by {count} relays, {delivered} messages on the topic")
    per_event = 1e6 / n
    return {
        "relays": count,
        "rate": n / seconds,
        "seconds": seconds,
        "lanes_per_relay": sorted((lanes for _, lanes in holders), reverse=True),
        "cpu_us_per_event": {
            "relays": [(a - b) * per_event for a, b in zip(after["relays"], before["relays"], strict=True)],
            "postgres": (after["postgres"] - before["postgres"]) * per_event,
            "kafka": (after["kafka"] - before["kafka"]) * per_event,
        },
    }


def run(quick=False):
    import tempfile

    common.setup_django()
    n, reps = (20_000, 2) if quick else (60_000, 3)
    log(f"scaling: {reps} repetitions, {n:,} events on one topic of {common.SEED_LANES} lanes, by 1, 2 and 4 relays")
    common.prepare_seed(common.make_event_data(1000, keys=200))
    topic = common.create_topic(common.topic_name("scaling"))
    workdir = tempfile.mkdtemp(prefix="bench-scaling-")
    runs = {count: [] for count in RELAYS}
    for rep in range(reps):
        order = RELAYS[rep % len(RELAYS) :] + RELAYS[: rep % len(RELAYS)]
        for count in order:
            result = measure(topic, n, count, workdir, f"rep{rep}-{count}")
            runs[count].append(result)
            log(
                f"  rep {rep + 1}/{reps}, {count} relay(s): {result['rate']:.0f} events/s, lanes per relay "
                f"{result['lanes_per_relay']}"
            )
    common.reset_tables()
    return {"name": "scaling", "events": n, "reps": reps, "lanes": common.SEED_LANES, "runs": runs, "logs": workdir}


def _median_cpu(runs, process):
    if process == "relays":
        return median([sum(r["cpu_us_per_event"]["relays"]) for r in runs])
    return median([r["cpu_us_per_event"][process] for r in runs])


def report(result):
    lines = [
        f"8. ONE TOPIC, SEVERAL RELAYS: a topic of {result['lanes']} lanes (ADR 22), {result['events']:,} pending "
        f"events, drained by N run_outbox_relay processes (exactly-once, batch 500); medians of {result['reps']} "
        "repetitions",
        f"   {'relays':>6} {'events/s':>10} {'vs 1':>6}   CPU us per event: {'relays':>7} {'postgres':>9} "
        f"{'kafka':>7} {'all':>7}   lanes per relay",
    ]
    one = median([r["rate"] for r in result["runs"][1]])
    for count, runs in result["runs"].items():
        rate = median([r["rate"] for r in runs])
        cpu = {process: _median_cpu(runs, process) for process in ("relays", "postgres", "kafka")}
        lines.append(
            f"   {count:>6} {rate:>10.0f} {rate / one:>6.2f}   {'':>17} {cpu['relays']:>7.1f} {cpu['postgres']:>9.1f} "
            f"{cpu['kafka']:>7.1f} {sum(cpu.values()):>7.1f}   {runs[-1]['lanes_per_relay']}"
        )
    lines.append(
        "   (relays: the sum over the relay processes. The machine's cores bound the total: a drain whose CPU per "
        "event is C us cannot beat cores x 1e6 / C events/s.)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", common.SETTINGS_MODULE)
    common.main(run, report, __doc__.splitlines()[1])
