"""kill -9 in the middle of a local and of a Dask run, then the same command again.

What must hold: the rerun's files are bit-identical to an uninterrupted local run's, nothing
finished before the kill is redone (its files keep their modification times), nothing partial
survives, and the manifest is complete. The Dask rerun also shows distributed == local.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dataset_cases import write_recipe, write_small_lidc

VIEWS = 8  # x (original + 1 variant) = 16 items


@pytest.fixture(scope="module")
def case(lidc_dir, tmp_path_factory):
    return write_small_lidc(lidc_dir, tmp_path_factory.mktemp("resume_case"))


@pytest.fixture(scope="module")
def reference(case, tmp_path_factory):
    """The uninterrupted local run everything is compared with."""
    from medsynth.dataset import load_recipe, run_local

    out = tmp_path_factory.mktemp("reference")
    summary = run_local(load_recipe(write_recipe(case, VIEWS)), out)
    assert summary.made == 2 * VIEWS
    return out


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def done_items(out: Path) -> list[Path]:
    """Finished items: an item.json in a published folder (not in a partial one being written)."""
    return sorted(p.parent for p in out.rglob("item.json")
                  if not any(part.startswith(".") or part.endswith(".partial") for part in p.parent.parts))


def kill_midway(command: list[str], out: Path, at_least: int, timeout_s: float = 120.0) -> list[Path]:
    """Start ``command`` in its own process group and SIGKILL the group once ``at_least`` items are done."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1] / "MedSynth"),
                                                        os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    try:
        while len(done_items(out)) < at_least:
            if process.poll() is not None:
                pytest.fail(f"the run ended before it was killed: {process.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the run made too few items in time")
            time.sleep(0.01)
    finally:
        os.kill(process.pid, signal.SIGKILL)  # kill -9 of the run ...
        with_workers = process.pid
        try:
            os.killpg(with_workers, signal.SIGKILL)  # ... and of the Dask workers it started
        except ProcessLookupError:
            pass
        process.wait()
    time.sleep(0.2)
    return done_items(out)


def check_resumed(out: Path, reference: Path, before: dict[Path, dict[str, int]]) -> None:
    assert not [p for p in out.rglob("*") if p.name.endswith(".partial") or p.name.startswith(".")]
    assert files_of(out) == files_of(reference)  # bit-identical, manifest included
    for folder, times in before.items():  # nothing finished before the kill was written again
        assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == times
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["rows"]) == 2 * VIEWS


def mtimes(folders: list[Path]) -> dict[Path, dict[str, int]]:
    return {folder: {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} for folder in folders}


def test_local_run_killed_midway_resumes_bit_identical(case, reference, tmp_path):
    from medsynth.dataset import load_recipe, run_local

    recipe = write_recipe(case, VIEWS)
    out = tmp_path / "local"
    finished = kill_midway([sys.executable, "-m", "medsynth.cli.main", "dataset", "run", str(recipe), "--out", str(out),
                            "--quiet"], out, at_least=4)
    assert 4 <= len(finished) < 2 * VIEWS and not (out / "manifest.json").exists()
    before = mtimes(finished)
    summary = run_local(load_recipe(recipe), out)
    assert (summary.made, summary.skipped) == (2 * VIEWS - len(finished), len(finished))
    check_resumed(out, reference, before)


def test_dask_run_killed_midway_resumes_bit_identical_to_local(case, reference, tmp_path):
    from distributed import Client, LocalCluster

    from medsynth.dataset import load_recipe
    from medsynth.dataset.distributed import run_on_client

    recipe = write_recipe(case, VIEWS)
    out = tmp_path / "dask"
    finished = kill_midway([sys.executable, "-m", "medsynth.cli.main", "dataset", "run", str(recipe), "--out", str(out),
                            "--workers", "2", "--quiet"], out, at_least=4)
    assert 4 <= len(finished) < 2 * VIEWS
    before = mtimes(finished)
    # the rerun: two workers in this process (the killed run had two worker processes)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        summary = run_on_client(load_recipe(recipe), out, client)
    assert summary.made == 2 * VIEWS - len(finished)
    check_resumed(out, reference, before)
