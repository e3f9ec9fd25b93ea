"""The CUDA projector: the same numbers as the CPU one (numba's CUDA simulator on a tiny volume,
and a real GPU when present), device choice, and a clear error when CUDA is absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from medsynth.errors import DeviceError

SCRIPT = r"""
import json, sys
import numpy as np
from medsynth import Volume
from medsynth.drr import project
from medsynth.drr.kernels.cuda import cuda_status
from medsynth.geometry import CArm
from medsynth.volume import VolumeMetadata

rng = np.random.default_rng(3)
array = np.full((7, 9, 8), -1000.0, np.float32)
array[1:6, 2:7, 1:7] = rng.uniform(-100, 200, (5, 5, 6))
array[3, 4, 3:5] = 1200.0  # bone
ct = Volume.from_spacing(array, (3.0, 2.5, 4.0), origin=(-10, -10, -14), metadata=VolumeMetadata(modality="CT", units="HU"))
poses = [CArm(a, b, sid=800.0, sod=500.0, detector_rows=6, detector_columns=5, pixel_spacing=6.0,
              isocenter=tuple(ct.center_ras)) for a, b in ((0.0, 0.0), (70.0, -20.0))]
gpu = project(ct, poses, device="cuda")
cpu = project(ct, poses, device="cpu")
print(json.dumps({
    "status": cuda_status()[1],
    "max_abs": max(float(np.abs(g.area_density - c.area_density).max()) for g, c in zip(gpu, cpu)),
    "max_value": max(float(c.area_density.max()) for c in cpu),
    "device": gpu[0].settings["device"],
}))
"""


def run_script(env_changes: dict) -> dict:
    env = dict(os.environ, **env_changes)
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_cuda_kernel_matches_cpu_in_the_simulator():
    pytest.importorskip("numba.cuda")
    result = run_script({"NUMBA_ENABLE_CUDASIM": "1"})
    assert result["status"] == "simulator" and result["device"] == "cuda"
    assert result["max_value"] > 1.0  # the rays do cross tissue
    assert result["max_abs"] < 1e-4 * result["max_value"]


def test_cuda_on_a_real_gpu_matches_cpu():
    from medsynth.drr.kernels.cuda import cuda_status, is_simulator

    usable, _ = cuda_status()
    if not usable or is_simulator():
        pytest.skip("no NVIDIA GPU here (the simulator test covers the kernel)")
    result = run_script({})
    assert result["status"] == "gpu"
    assert result["max_abs"] < 1e-4 * result["max_value"]


def test_cuda_asked_for_but_absent_is_a_clear_error(monkeypatch):
    from medsynth.drr import choose_device
    from medsynth.drr.kernels import cuda

    monkeypatch.setattr(cuda, "cuda_status", lambda: (False, "no NVIDIA GPU or driver was found"))
    with pytest.raises(DeviceError, match="device='cpu'"):
        choose_device("cuda")
    assert choose_device("auto") == "cpu"
    assert choose_device("cpu") == "cpu"
