"""
A test that hangs ends the run with a traceback naming it, not with silence (a CI run once
hung for ten minutes without output in a registry request that never got an answer).
"""

import subprocess
import sys

from tests.outbox_tools import ROOT

HANGING_TEST = """
import time


def test_hangs_for_ever():
    time.sleep(3600)
"""


def test_every_test_is_bounded_by_pytest_timeout(request):
    assert float(request.config.getini("timeout")) > 0
    assert request.config.getini("timeout_method") == "thread"


def test_a_hanging_test_fails_with_its_name_and_stack(tmp_path):
    (tmp_path / "test_hang.py").write_text(HANGING_TEST)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(ROOT / "setup.cfg"),
            "--rootdir",
            str(tmp_path),
            "-p",
            "no:django",
            "-o",
            "timeout=2",
            str(tmp_path / "test_hang.py"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Timeout" in output, output
    assert 'test_hang.py", line 6, in test_hangs_for_ever' in output, output
