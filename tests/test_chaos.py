"""
The CI-sized chaos run: the same ``chaos.run`` as ``make chaos``, smaller, on this test
session's server database, with the relay killed and the broker, registry and database
restarted while writers commit, roll back and raise.
"""

import subprocess
import sys

import pytest
from django.conf import settings

from tests.outbox_tools import ROOT

pytestmark = [pytest.mark.kafka, pytest.mark.stack_restart, pytest.mark.server_database]


@pytest.mark.timeout(960)  # the run's own limit (900 s) fails first, with its verdict
def test_small_chaos_run_loses_nothing_publishes_no_phantom_and_never_reorders(kafka_stack, tmp_path):
    report = tmp_path / "chaos.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaos.run",
            "--db",
            settings.DATABASE_KIND,
            "--seed",
            "7",
            "--transactions",
            "400",
            "--duration",
            "20",
            "--faults",
            "5",
            "--report",
            str(report),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    verdict = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-2000:]
    assert result.returncode == 0, verdict
    import json

    outcome = json.loads(report.read_text().splitlines()[-1])
    assert outcome["lost"] == outcome["phantom"] == outcome["reorders"] == 0, verdict
    assert outcome["committed"] > 0 and outcome["published"] >= outcome["committed"]
