"""Preview, prepare and kernel warm-up at once never abort the process (issue 14, item 4).

Each run is a subprocess under numba's workqueue threading layer, the one that aborts on
concurrent ``parallel=True`` calls ("Concurrent access has been detected", exit 134).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("slicer")
pytest.importorskip("numba")

SCRIPT = Path(__file__).with_name("drr_threads_script.py")


def run_race(*arguments: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue"}
    return subprocess.run([sys.executable, str(SCRIPT), "--seconds", "2", *arguments], capture_output=True,
                          text=True, env=env, timeout=600)


def test_preview_prepare_and_warm_up_run_concurrently_without_abort():
    result = run_race()
    assert result.returncode == 0, result.stderr[-2000:]
    assert "threading layer workqueue" in result.stdout
    renders, prepares = map(int, result.stdout.split("ok", 1)[1].split())
    assert renders > 1 and prepares > 1  # both threads really ran kernels during the race


def test_the_race_aborts_without_the_kernel_lock():
    """The same script without MedSynth's lock reaches numba's abort: the test above is not vacuous."""
    result = run_race("--unlocked")
    assert result.returncode != 0
    assert "Concurrent access has been detected" in result.stderr
