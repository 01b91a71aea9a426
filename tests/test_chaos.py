"""
The CI-sized chaos runs: the same ``chaos.run`` as ``make chaos``, smaller, on this test
session's server database, with the relay killed and the broker, registry and database
restarted while writers commit, roll back and raise; and through Redis Streams, with the
run's own Redis killed and restarted.
"""

import json
import subprocess
import sys

import pytest
from django.conf import settings

from tests.outbox_tools import ROOT

pytestmark = pytest.mark.server_database


def run_chaos(tmp_path, *options):
    """``chaos.run`` on this session's server database; returns its verdict (the report's JSON line)."""
    report = tmp_path / "chaos.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "chaos.run", "--db", settings.DATABASE_KIND, *options, "--report", str(report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    verdict = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-2000:]
    assert result.returncode == 0, verdict
    outcome = json.loads(report.read_text().splitlines()[-1])
    assert outcome["lost"] == outcome["phantom"] == outcome["reorders"] == 0, verdict
    assert outcome["committed"] > 0 and outcome["published"] >= outcome["committed"]
    return outcome


@pytest.mark.kafka
@pytest.mark.stack_restart
@pytest.mark.timeout(960)  # the run's own limit (900 s) fails first, with its verdict
def test_small_chaos_run_loses_nothing_publishes_no_phantom_never_reorders_and_never_duplicates(kafka_stack, tmp_path):
    """Exactly-once, the relay's default (ADR 20): relays SIGKILLed besides the faults, and not one duplicate."""
    outcome = run_chaos(
        tmp_path, "--seed", "7", "--transactions", "400", "--duration", "20", "--faults", "5", "--kills", "4"
    )
    assert outcome["exactly_once"] and outcome["relays_killed"] >= 4, outcome
    assert outcome["duplicates"] == 0, outcome


@pytest.mark.timeout(960)
def test_small_chaos_run_through_redis_streams_with_redis_killed_and_relays_killed(redis_stack, tmp_path):
    """The run's own redis-server (never the stack's) SIGKILLed and restarted, and relays SIGKILLed."""
    outcome = run_chaos(
        tmp_path,
        *("--sink", "redis", "--actions", "kill_relay,restart_redis"),
        *("--seed", "7", "--transactions", "400", "--duration", "20", "--faults", "5"),
    )
    assert outcome["sink"] == "redis"
