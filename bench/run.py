"""
``python -m bench.run [--quick] [--only NAMES]``: every benchmark of ``make bench``, one report.

Runs, on PostgreSQL with the real Kafka broker and schema registry of the local stack, each
comparison side by side in the same run: (1) the write path, (2) the relay drain rate,
(3) commit-to-acknowledgement latency, (4) the relay's RSS, (5) consumer throughput (when
``tests/consumer/bench_consumer.py`` exists), (6) the relay's drain rate to Redis Streams against
edx-event-bus-redis (on the stack's Redis), (7) the database work (WAL, index entries) per
event from INSERT to purge, (8) the relay's scaling over lanes and processes, (9) the commit
rate of concurrent writers under each wake-up trigger. Prints the report and writes it, with the raw
figures and a chart, to ``bench-report/``: ``report.txt``, ``report.json``, ``bench.png``.

Needs the stack (``make stack-up``) and the bench-only packages of ``requirements/bench.txt``
(django-jaiminho, matplotlib); it installs nothing. Full mode takes about 30 minutes on the
2-core machine, ``--quick`` about 5.
"""

import argparse
import json
import os
import signal
import sys
import time
import traceback

from bench import common

BENCHMARKS = [
    "write_path",
    "drain",
    "latency",
    "rss",
    "consumer",
    "redis_drain",
    "db_work",
    "scaling",
    "concurrent_writers",
]
GOALS = "GOALS"
DATABASES = ("postgres", "mysql", "sqlite")


def _module(name):
    import importlib

    return importlib.import_module(f"bench.{name}")


def goal_lines(results):
    """One line per goal: measured value, goal, verdict."""
    lines = []

    def add(label, value, goal, met, fmt="{:.2f}"):
        shown = "not measured" if value is None else fmt.format(value)
        verdict = "-" if value is None else ("MET" if met else "NOT MET")
        lines.append(f"   {label:<58} {shown:>14}   goal {goal:<14} {verdict}")

    w = results.get("write_path", {})
    add(
        "write path: ours / edx-event-bus-kafka send()",
        w.get("ratio_ours_over_edx"),
        "<= 1.0",
        (w.get("ratio_ours_over_edx") or 99) <= 1.0,
    )
    add("write path: ours / plain ORM insert", w.get("ratio_ours_over_plain"), "(reported)", True)
    add(
        f"floor ({w.get('database', '-')}): (marginal send() - round trip) / edx send()",
        w.get("ratio_work_we_add_over_edx"),
        "<= 0.33",
        (w.get("ratio_work_we_add_over_edx") or 99) <= 1 / 3,
    )
    add(
        "  the same over edx send() timed in the writing transaction",
        w.get("ratio_work_we_add_over_edx_in_tx"),
        "(reported)",
        True,
    )
    d = results.get("drain", {})
    add(
        "relay drain: ours / edx-event-bus-kafka direct",
        d.get("ratio_ours_over_edx"),
        ">= 2.0",
        (d.get("ratio_ours_over_edx") or 0) >= 2.0,
    )
    add("relay drain: ours / django-jaiminho relay", d.get("ratio_ours_over_jaiminho"), "(reported)", True)
    lat = (results.get("latency") or {}).get("ack", {})
    add("latency p50 at 500 events/s, ms", lat.get("p50"), "<= 10", (lat.get("p50") or 1e9) <= 10, "{:.1f}")
    add("latency p99 at 500 events/s, ms", lat.get("p99"), "<= 50", (lat.get("p99") or 1e9) <= 50, "{:.1f}")
    runs = (results.get("rss") or {}).get("runs") or []
    peak = max((r["peak_rss_mb"] for r in runs), default=None)
    add("relay peak RSS, MB", peak, "<= 150", (peak or 1e9) <= 150, "{:.1f}")
    c = results.get("consumer") or {}
    ratio = (c.get("figures") or {}).get("ratio")
    add("consumer: ours / edx-event-bus-kafka", ratio, ">= 1.5", (ratio or 0) >= 1.5)
    r = results.get("redis_drain") or {}
    add(
        "relay drain to Redis: ours / edx-event-bus-redis direct",
        r.get("ratio_ours_over_edx"),
        ">= 2.0",
        (r.get("ratio_ours_over_edx") or 0) >= 2.0,
    )
    cw = results.get("concurrent_writers") or {}
    most = max(cw.get("writers") or [0])
    for kind in ("send", "sql"):
        ratios = cw.get("ratio_to_no_trigger") or {}
        add(
            f"{most} {kind} writers: trigger, no relay waiting / none",
            ratios.get(f"{kind}/{most}/none waiting"),
            "(reported)",
            True,
        )
        add(
            f"{most} {kind} writers: previous trigger / none",
            ratios.get(f"{kind}/{most}/0004 trigger"),
            "(reported)",
            True,
        )
    return lines


def _stop(signum, _frame):
    """SIGTERM (e.g. from make or a CI timeout): unwind, so subprocesses stop and topics are deleted."""
    raise SystemExit(128 + signum)


def compose(machine, results, reports, mode, run_id, started, took):
    command = f"python -m bench.run {' '.join(sys.argv[1:])}".strip() if sys.argv[1:] else "make bench"
    header = [
        "edx-event-bus-outbox benchmark report",
        f"command: {command}; mode: {mode}; run id {run_id}; "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(started))}; took {took:.0f} s",
        f"all benchmarks on {machine['database'].split(' (')[0]} with the real Kafka broker and schema registry; "
        "every comparison side by side in the same run",
        "machine:",
        common.format_machine(machine),
        "",
        f"{GOALS}:",
        *goal_lines(results),
    ]
    return "\n".join(header) + "\n\n" + "\n\n".join(reports) + "\n"


def write_outputs(out, machine, results, reports, mode, run_id, started, took):
    """Write report.txt, report.json and bench.png to ``out`` and print the report."""
    text = compose(machine, results, reports, mode, run_id, started, took)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "report.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(out, "report.json"), "w", encoding="utf-8") as f:
        json.dump(
            {"machine": machine, "mode": mode, "run_id": run_id, "started": started, "took": took, "results": results},
            f,
            indent=1,
            default=str,
        )
    try:
        from bench import chart

        chart.render(results, os.path.join(out, "bench.png"), machine)
        chart_note = f"chart: {os.path.join(out, 'bench.png')}"
    except ImportError as exc:
        chart_note = f"chart not drawn ({exc}); install requirements/bench.txt"
    print(text)
    print(f"report: {os.path.join(out, 'report.txt')}; raw figures: {os.path.join(out, 'report.json')}; {chart_note}")


def rerender(path, out):
    """Rebuild report.txt and bench.png from a saved report.json (no benchmark runs)."""
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    results, reports = saved["results"], []
    for name, result in results.items():
        if result.get("error"):
            reports.append(f"{name}: FAILED\n" + "\n".join(f"   {line}" for line in result["error"].splitlines()[-12:]))
        else:
            reports.append(_module(name).report(result))
        load = result.get("load_average_1min") or [float("nan"), float("nan")]
        reports[-1] += (
            f"\n   ({result.get('duration_s', float('nan')):.0f} s; 1-minute load average {load[0]:.2f} "
            f"before, {load[1]:.2f} after, on {saved['machine']['cores']} cores)"
        )
    write_outputs(
        out,
        saved["machine"],
        results,
        reports,
        saved["mode"],
        saved["run_id"],
        saved.get("started", time.time()),
        saved.get("took") or sum(r.get("duration_s", 0) for r in results.values()),
    )


def main():
    signal.signal(signal.SIGTERM, _stop)
    parser = argparse.ArgumentParser(description="edx-event-bus-outbox benchmarks (make bench)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions (about 5 minutes)")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument(
        "--database",
        choices=DATABASES,
        default=os.environ.get("BENCH_DB", "postgres"),
        help="the database (BENCH_DB); all but postgres run only the write_path benchmark",
    )
    parser.add_argument("--out", default=str(common.REPORT_DIR), help="report directory (default bench-report/)")
    parser.add_argument(
        "--from-json", metavar="REPORT_JSON", help="only rebuild report.txt and bench.png from a saved report.json"
    )
    args = parser.parse_args()
    if args.from_json:
        os.environ["DJANGO_SETTINGS_MODULE"] = common.SETTINGS_MODULE
        rerender(args.from_json, args.out)
        return 0
    names = args.only.split(",") if args.only else BENCHMARKS
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    if args.database != "postgres" and set(names) - {"write_path"}:
        parser.error(f"--database {args.database} runs --only write_path; the other benchmarks need PostgreSQL")
    os.environ["BENCH_DB"] = args.database

    started = time.time()
    common.setup_django()
    machine = common.machine_info()
    common.log(f"bench run {common.RUN_ID} ({'quick' if args.quick else 'full'}): {', '.join(names)}")
    results, reports, durations = {}, [], {}
    try:
        for name in names:
            module = _module(name)
            load_before = os.getloadavg()[0]
            t0 = time.time()
            try:
                results[name] = module.run(quick=args.quick)
                reports.append(module.report(results[name]))
            except Exception:  # noqa: BLE001  one benchmark failing must not lose the others
                error = traceback.format_exc()
                common.log(f"{name} FAILED:\n{error}")
                results[name] = {"name": name, "error": error}
                reports.append(f"{name}: FAILED\n" + "\n".join(f"   {line}" for line in error.splitlines()[-12:]))
            finally:
                common.delete_created_topics()
            durations[name] = time.time() - t0
            results[name]["duration_s"] = durations[name]
            results[name]["load_average_1min"] = [load_before, os.getloadavg()[0]]
            reports[-1] += (
                f"\n   ({durations[name]:.0f} s; 1-minute load average {load_before:.2f} before, "
                f"{os.getloadavg()[0]:.2f} after, on {machine['cores']} cores)"
            )
    finally:
        common.delete_created_topics()
    machine["load_average_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    mode = "quick" if args.quick else "full"
    write_outputs(args.out, machine, results, reports, mode, common.RUN_ID, started, time.time() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
