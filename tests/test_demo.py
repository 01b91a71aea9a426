"""
``make demo`` as a test: ``demo/manage.py run_demo``, smaller, against the local stack, in a
directory and on a topic of its own, through Kafka and through Redis Streams; its summary must
show nothing lost and nothing phantom.
"""

import os
import re
import subprocess
import sys
import uuid

import pytest

from tests.outbox_tools import ROOT
from tests.redis_tools import streams_url

pytestmark = pytest.mark.sqlite_only

EVENTS = 60


def summary_counts(output):
    """``{"committed transactions (events)": 48, ...}`` from the demo's ``[4/4] summary`` lines."""
    summary = output.split("[4/4] summary", 1)[1]
    lines = re.findall(r"^  ([A-Za-z][A-Za-z >()\-,_]+?)\s+(\d+)", summary, re.MULTILINE)
    return {name.strip(): int(number) for name, number in lines}


def run_demo(tmp_path, *options, **env):
    """``demo/manage.py run_demo`` on a directory and a topic of its own; returns its summary counts."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo_settings",
        "OUTBOX_DEMO_DIR": str(tmp_path),
        "OUTBOX_DEMO_TOPIC": f"test-demo-{uuid.uuid4().hex[:12]}",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "demo" / "manage.py"),
            "run_demo",
            "--events",
            str(EVENTS),
            "--rate",
            "50",
            "--rollback-share",
            "0.25",
            "--timeout",
            "90",
            *options,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return summary_counts(result.stdout)


def assert_nothing_lost_and_no_phantom(counts, published_to):
    committed, rolled_back = counts["committed transactions (events)"], counts["rolled back"]
    assert committed + rolled_back == EVENTS and committed > 0 and rolled_back > 0, counts
    assert counts[f"published to {published_to}"] == committed, counts
    assert counts["received by consume_events"] == committed, counts
    assert counts["lost"] == 0 and counts["phantom (rolled back, published)"] == 0, counts


def test_the_demo_loses_nothing_and_publishes_no_rolled_back_event(kafka_stack, tmp_path):
    assert_nothing_lost_and_no_phantom(run_demo(tmp_path), "Kafka")


def test_the_demo_through_redis_streams_and_edx_event_bus_redis_loses_nothing(redis_stack, tmp_path):
    """``run_demo --sink redis``: the relay writes a stream, edx-event-bus-redis's consume_events reads it."""
    counts = run_demo(tmp_path, "--sink", "redis", OUTBOX_TEST_REDIS_URL=streams_url(redis_stack))
    assert_nothing_lost_and_no_phantom(counts, "Redis")
