"""
Benchmark 4, the relay's memory: peak RSS of ``manage.py run_outbox_relay
--until-empty`` (a subprocess serving every lane, default settings, batch 500) while it drains a large
backlog, at two backlog sizes (1,000,000 and 100,000 rows in full mode; 100,000 and 20,000 with
``--quick``), so that growth with the backlog would show.

The backlog is made in one ``INSERT ... SELECT`` from rows our ``send()`` wrote
(``common.load_backlog``: fresh event ids, byte-identical payloads) and ANALYZEd. The relay is
sampled every 0.5 s: ``VmRSS`` and ``VmHWM`` from ``/proc/PID/status``, and the events on the
topic so far (Kafka watermarks). The peak is ``VmHWM`` as the relay exits, which ``bench.relay_peak``
(a stand-in for ``manage.py`` that runs the same command) writes out; ``ru_maxrss`` is not used,
because at ``exec`` the kernel carries the (large) parent's high-water mark over to the child. A drain that has not
finished by the time cap is stopped with SIGTERM (the relay finishes its batch and exits 0);
the report says how many events it drained.
"""

import os
import signal as signals
import subprocess
import sys
import tempfile
import threading
import time

from bench import common
from bench.common import ROOT, log

GOAL_MB = 150


def _status_kb(pid):
    values = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    values[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    return values


def measure(topic, backlog, cap_seconds):
    common.reset_tables()
    t0 = time.perf_counter()
    common.load_backlog(topic, backlog)
    load_seconds = time.perf_counter() - t0
    before = common.topic_message_count(topic)
    hwm_file = tempfile.NamedTemporaryFile(prefix="bench-rss-", suffix=".kb", delete=False)
    hwm_file.close()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.relay_peak", hwm_file.name, "run_outbox_relay", "--until-empty"],
        cwd=ROOT,
        env=common.child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    samples = []  # (seconds, events on Kafka, VmRSS MB, VmHWM MB)
    done = threading.Event()
    start = time.perf_counter()

    def sample():
        while not done.is_set():
            status = _status_kb(process.pid)
            if status:
                try:
                    events = common.topic_message_count(topic) - before
                except Exception:  # noqa: BLE001  sampling is best effort
                    events = samples[-1][1] if samples else 0
                samples.append(
                    (time.perf_counter() - start, events, status.get("VmRSS", 0) / 1024, status.get("VmHWM", 0) / 1024)
                )
            done.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    capped = False
    while True:
        pid, _, _ = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if not capped and time.perf_counter() - start > cap_seconds:
            process.send_signal(signals.SIGTERM)
            capped = True
        elif capped and time.perf_counter() - start > cap_seconds + 120:
            process.kill()  # it ignored SIGTERM for two minutes: never wait for ever
        time.sleep(0.2)
    elapsed = time.perf_counter() - start
    process.returncode = 0
    done.set()
    sampler.join()
    drained = common.topic_message_count(topic) - before
    try:
        with open(hwm_file.name, encoding="ascii") as f:
            at_exit = int(f.read().strip()) / 1024
    except (OSError, ValueError):
        at_exit = float("nan")
    os.unlink(hwm_file.name)
    peak = max([s[3] for s in samples] + ([] if at_exit != at_exit else [at_exit]))
    steady = [s[2] for s in samples if s[1] > 0]
    return {
        "backlog": backlog,
        "load_seconds": load_seconds,
        "drained": drained,
        "complete": drained >= backlog,
        "seconds": elapsed,
        "rate": drained / elapsed if elapsed else float("nan"),
        "peak_rss_mb": peak,
        "vmhwm_at_exit_mb": at_exit,
        "rss_first_batch_mb": steady[0] if steady else float("nan"),
        "rss_mid_mb": steady[len(steady) // 2] if steady else float("nan"),
        "rss_last_mb": steady[-1] if steady else float("nan"),
        "samples": samples,
    }


def run(quick=False):
    common.setup_django()
    sizes = [(100_000, 25), (20_000, 15)] if quick else [(1_000_000, 330), (100_000, 60)]
    log("rss: " + ", ".join(f"backlog {n:,} (cap {cap} s)" for n, cap in sizes))
    common.prepare_seed(common.make_event_data(1000))
    topic = common.create_topic(common.topic_name("rss"))
    runs = []
    for backlog, cap in sizes:
        result, _ = common.guarded(f"rss backlog {backlog:,}")(
            lambda backlog=backlog, cap=cap: measure(topic, backlog, cap)
        )
        runs.append(result)
        log(
            f"  backlog {backlog:,}: peak {result['peak_rss_mb']:.1f} MB, drained {result['drained']:,} in "
            f"{result['seconds']:.0f} s (load took {result['load_seconds']:.0f} s)"
        )
    common.reset_tables()
    return {"name": "rss", "goal_mb": GOAL_MB, "runs": runs}


def report(result):
    lines = ["4. RELAY RSS: peak resident memory of a run_outbox_relay subprocess draining a backlog"]
    for r in result["runs"]:
        state = "all" if r["complete"] else f"{r['drained']:,} (stopped at the time cap)"
        lines.append(
            f"   backlog {r['backlog']:>9,}: peak RSS {r['peak_rss_mb']:6.1f} MB (VmHWM); RSS after "
            f"the first batch {r['rss_first_batch_mb']:.1f} MB, half-way {r['rss_mid_mb']:.1f} MB, "
            f"at the end {r['rss_last_mb']:.1f} MB; drained "
            f"{state} in {r['seconds']:.0f} s ({r['rate']:.0f} events/s)"
        )
    worst = max(r["peak_rss_mb"] for r in result["runs"])
    lines.append(
        f"   goal <= {result['goal_mb']} MB and no growth with the backlog: "
        f"{'MET' if worst <= result['goal_mb'] else 'NOT MET'} (largest peak {worst:.1f} MB; peaks "
        + " vs ".join(f"{r['peak_rss_mb']:.1f}" for r in result["runs"])
        + " MB)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    common.main(run, report, __doc__.splitlines()[1])
