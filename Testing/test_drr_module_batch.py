"""DRRProjectionBatch.py with plain Python against slicer-core: arguments, exit codes, progress, outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medsynth.volume import Volume, VolumeMetadata

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "DRRProjection" / "Batch" / "DRRProjectionBatch.py"

pytest.importorskip("slicer")


def run_batch(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=str(ROOT), env=env)


@pytest.fixture(scope="module")
def ct_file(lidc_ct, tmp_path_factory) -> Path:
    """LIDC-IDRI-0001 at a quarter of its in-plane resolution, as NRRD (the real scan, small)."""
    from medsynth.io import write_volume

    matrix = lidc_ct.ijk_to_ras.copy()
    matrix[:3, :2] *= 4.0
    small = Volume(np.ascontiguousarray(lidc_ct.array[:, ::4, ::4]), matrix, VolumeMetadata(modality="CT", units="HU"))
    path = tmp_path_factory.mktemp("batch") / "lidc_small.nrrd"
    write_volume(small, path)
    return path


def write_poses(folder: Path, data) -> Path:
    path = folder / "poses.json"
    path.write_text(json.dumps(data))
    return path


def test_batch_renders_every_pose_resumably(ct_file, tmp_path):
    from medsynth import drr
    from medsynth.geometry import CArm
    from medsynth.io import read_volume

    poses = write_poses(tmp_path, {"defaults": {"secondary": 5.0},
                                   "poses": [{"name": "AP", "primary": 0}, {"name": "oblique", "primary": 30,
                                                                             "secondary": -15, "isocenter": [0, 0, -170]}],
                                   "sweep": {"axis": "primary", "start": -20, "stop": 20, "step": 20}})
    out = tmp_path / "out"
    result = run_batch("--ct", str(ct_file), "--poses", str(poses), "--out", str(out), "--rows", "48")
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stdout.splitlines() if line.startswith("PROGRESS")]
    assert len(progress) >= 6 and progress[-1].startswith("PROGRESS 100.0%")
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["AP", "oblique", "RAO20", "LAO0", "LAO20"])
    for name in names:
        assert {p.name for p in (out / name).iterdir()} == {"drr.nrrd", "drr.png", "carm.json", "done.json"}

    # the written image is the library's projection for the pose recorded next to it
    geometry = json.loads((out / "oblique" / "carm.json").read_text())
    carm = CArm.from_dict(geometry)
    assert (carm.primary_angle, carm.secondary_angle, carm.isocenter) == (30.0, -15.0, (0.0, 0.0, -170.0))
    assert carm.detector_rows == 48
    np.testing.assert_allclose(geometry["projection_matrix"], carm.projection_matrix())
    image = read_volume(out / "oblique" / "drr.nrrd")
    expected = drr.project(read_volume(ct_file, modality="CT"), carm, device="cpu")[0].as_volume("intensity")
    np.testing.assert_allclose(image.array, expected.array, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(image.ijk_to_ras, expected.ijk_to_ras, atol=1e-4)

    # running again renders nothing: finished folders are kept
    stamp = (out / "AP" / "drr.nrrd").stat().st_mtime_ns
    again = run_batch("--ct", str(ct_file), "--poses", str(poses), "--out", str(out), "--rows", "48")
    assert again.returncode == 0 and "0 DRRs rendered, 5 already done" in again.stdout
    assert (out / "AP" / "drr.nrrd").stat().st_mtime_ns == stamp


def test_batch_bad_input_gives_exit_code_2_and_a_clear_message(ct_file, tmp_path, lidc_ct):
    from medsynth.io import write_volume

    good = write_poses(tmp_path, [{"name": "AP"}])
    missing = run_batch("--ct", str(ct_file), "--out", str(tmp_path / "o"))
    assert missing.returncode == 2 and "--ct, --poses and --out are required" in missing.stderr
    unknown = run_batch("--frobnicate")
    assert unknown.returncode == 2 and "unrecognized arguments" in unknown.stderr

    no_ct = run_batch("--ct", str(tmp_path / "nothing.nrrd"), "--poses", str(good), "--out", str(tmp_path / "o"))
    assert no_ct.returncode == 2 and "does not exist" in no_ct.stderr

    (tmp_path / "bad").mkdir()
    impossible = write_poses(tmp_path / "bad", [{"name": "AP"}, {"name": "short", "sod": 1100}])
    geometry = run_batch("--ct", str(ct_file), "--poses", str(impossible), "--out", str(tmp_path / "o"), "--rows", "16")
    assert geometry.returncode == 2 and "SOD" in geometry.stderr
    assert not (tmp_path / "o").exists()  # every pose is checked before anything is written

    scaled = tmp_path / "scaled.nrrd"
    write_volume(Volume(np.full((8, 16, 16), 0.5, np.float32), np.diag([10.0, 10.0, 10.0, 1.0])), scaled)
    not_hu = run_batch("--ct", str(scaled), "--poses", str(good), "--out", str(tmp_path / "o"))
    assert not_hu.returncode == 2 and "Hounsfield" in not_hu.stderr

    (tmp_path / "broken.json").write_text("{not json")
    broken = run_batch("--ct", str(ct_file), "--poses", str(tmp_path / "broken.json"), "--out", str(tmp_path / "o"))
    assert broken.returncode == 2 and "not valid JSON" in broken.stderr


def test_batch_self_test_on_an_analytic_phantom():
    result = run_batch("--self-test", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "self-test passed" in result.stdout and "PROGRESS" not in result.stdout


def test_batch_gives_every_pose_its_own_noise_and_resumes_it(ct_file, tmp_path):
    """Two poses of the same geometry get different noise (one seed per pose), and a pose rendered
    again after its folder was lost gets exactly the noise it had."""
    from medsynth.io import read_volume

    poses = write_poses(tmp_path, [{"name": "first", "primary": 10}, {"name": "second", "primary": 10}])
    out = tmp_path / "noisy"
    args = ("--ct", str(ct_file), "--poses", str(poses), "--out", str(out), "--rows", "32", "--photons", "2000",
            "--no-png", "--quiet")
    assert run_batch(*args).returncode == 0
    first, second = (read_volume(out / name / "drr.nrrd").array for name in ("first", "second"))
    assert not np.array_equal(first, second)
    assert abs(first.mean() - second.mean()) < 0.05 * first.mean()  # same pose: they differ by noise alone
    import shutil

    shutil.rmtree(out / "second")
    assert run_batch(*args).returncode == 0
    np.testing.assert_array_equal(read_volume(out / "second" / "drr.nrrd").array, second)
