"""
Benchmark 5, consumer throughput: a hook for ``tests/consumer/bench_consumer.py``.

That module (owned by the consumer work) measures events/s consumed and emitted with no-op
receivers by our ``KafkaEventConsumer`` and by edx-event-bus-kafka's, on the same pre-filled topic
in the same run, and returns a dict from ``run(n_events, topic_prefix)``. When the module exists,
this hook runs it in a subprocess -- with its own default settings (``tests.settings``) on the
bench's PostgreSQL database -- and reports its figures; when it does not, the report says so
and nothing fails.
"""

import importlib.util
import json
import subprocess
import sys

from bench import common
from bench.common import ROOT, log

MODULE = "tests.consumer.bench_consumer"
GOAL_RATIO = 1.5

_CALL = """
import inspect, json, sys
from {module} import run
kwargs = {{}}
if "repeats" in inspect.signature(run).parameters:
    kwargs["repeats"] = int(sys.argv[3])
result = run(int(sys.argv[1]), sys.argv[2], **kwargs)
print("BENCH_RESULT " + json.dumps(result, default=str), flush=True)
"""


def available():
    try:
        return importlib.util.find_spec(MODULE) is not None
    except ModuleNotFoundError:
        return False


def run(quick=False):
    if not available():
        log(f"consumer: {MODULE} not found; skipped")
        return {"name": "consumer", "available": False}
    n_events, repeats = (1_000, 3) if quick else (5_000, 5)
    log(f"consumer: {MODULE}.run({n_events}, ...) x {repeats} repeats, in a subprocess")
    common.setup_django()
    from django.conf import settings

    env = common.child_env(
        DJANGO_SETTINGS_MODULE="tests.settings",
        OUTBOX_TEST_DB="postgres",
        OUTBOX_TEST_DB_NAME=settings.DATABASES["default"]["NAME"],
    )
    completed = subprocess.run(
        [sys.executable, "-c", _CALL.format(module=MODULE), str(n_events), common.topic_name("consumer"), str(repeats)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    line = next((text for text in completed.stdout.splitlines() if text.startswith("BENCH_RESULT ")), None)
    if completed.returncode != 0 or line is None:
        tail = "\n".join((completed.stderr or completed.stdout).splitlines()[-15:])
        return {"name": "consumer", "available": True, "error": f"exit {completed.returncode}:\n{tail}"}
    figures = json.loads(line[len("BENCH_RESULT ") :])
    if figures.get("topic"):
        common._created_topics.append(figures["topic"])
    return {"name": "consumer", "available": True, "n_events": n_events, "repeats": repeats, "figures": figures}


def ours_and_edx(result):
    """``(ours events/s, edx-event-bus-kafka events/s, ratio)`` from the module's figures, or Nones."""
    f = result.get("figures") or {}
    return (f.get("edx_event_bus_outbox_events_per_s"), f.get("edx_event_bus_kafka_events_per_s"), f.get("ratio"))


def report(result):
    title = "5. CONSUMER THROUGHPUT: events/s consumed and emitted, no-op receivers"
    if not result.get("available"):
        return f"{title}\n   NOT RUN: {MODULE} does not exist yet; bench/consumer.py calls it once it does."
    if result.get("error"):
        return f"{title}\n   FAILED: {MODULE}.run raised:\n" + "\n".join(
            f"     {line}" for line in result["error"].splitlines()
        )
    ours, edx, ratio = ours_and_edx(result)
    f = result["figures"]
    lines = [f"{title}; {MODULE}, {result['n_events']:,} events, median of {f.get('repeats', result['repeats'])} runs"]
    if ours is not None:
        lines += [
            f"   ours: KafkaEventConsumer                      {ours:9.0f} events/s",
            f"   edx-event-bus-kafka KafkaEventConsumer        {edx:9.0f} events/s",
            f"   ratio ours/edx-event-bus-kafka = {ratio:.2f}   (goal >= {GOAL_RATIO}: "
            f"{'MET' if ratio >= GOAL_RATIO else 'NOT MET'})",
        ]
    extra = {
        k: v
        for k, v in f.items()
        if k not in ("edx_event_bus_outbox_events_per_s", "edx_event_bus_kafka_events_per_s", "ratio")
    }
    lines.append("   module's other figures: " + json.dumps(extra, default=str))
    return "\n".join(lines)


if __name__ == "__main__":
    common.main(run, report, __doc__.splitlines()[1])
