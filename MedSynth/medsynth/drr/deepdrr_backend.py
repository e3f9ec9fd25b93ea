"""Optional DeepDRR backend: DeepDRR itself renders, in its own Python environment.

DeepDRR (GPL-3.0) pins numpy<2 and needs CuPy and a CUDA GPU, so it cannot live inside Slicer >= 5.10
or MedSynth's environment. A user who has it points MedSynth at that environment's Python
(``MEDSYNTH_DEEPDRR_PYTHON`` or the hub's setting ``Settings.deepdrr_python``); MedSynth then
starts ``deepdrr_worker.py`` there with the CT as NIfTI and the geometry as JSON, and reads back
the images. Nothing else in MedSynth depends on this module.

Installing DeepDRR 1.2.2 (known fixes)::

    python -m venv deepdrr-env && deepdrr-env/bin/pip install deepdrr==1.2.2 "cupy-cuda12x<14" "cuda-python<13" numba

(numba is imported by DeepDRR without being declared; open3d, one of its dependencies, needs the
system library libusb-1.0; where torchvision cannot be imported beside the installed torch, the
worker supplies the two download helpers DeepDRR imports from it.)

Geometry mapping. MedSynth's ``CArm`` becomes a DeepDRR ``MobileCArm`` with

- ``world_from_device`` = [W | isocenter]: DeepDRR's world is MedSynth's RAS; the device frame's
  x, y, z axes point to the head, the patient's right and anterior (in the room, i.e. for the
  patient position given), and the isocenter is the device origin;
- ``alpha``, ``beta``, ``gamma``: the Euler angles with
  ``W^T R_cam^T = Ry(beta) Rx(alpha) Rz(-(gamma + 90 deg))``, where R_cam is the camera rotation
  MedSynth's projection implies (``rotate_camera_left`` adds the 90 deg);
- ``source_to_detector_distance`` = SID, ``source_to_isocenter_vertical_distance`` = SOD,
  ``sensor_width`` = MedSynth's detector rows, ``sensor_height`` = its columns, ``pixel_size``.

DeepDRR samples pixel (u, v) at index (u + 0.5, v + 0.5) and returns images indexed [v, u]; MedSynth's
pixel (col, row) is DeepDRR's (u, v) = (row + 0.5, col + 0.5), so MedSynth's image is DeepDRR's
image transposed and ``P_medsynth = S @ P_deepdrr`` with ``S`` = ``MEDSYNTH_FROM_DEEPDRR_PIXELS``.
``deepdrr_index_from_world`` re-derives DeepDRR's projection matrix with numpy from its documented
MobileCArm conventions (read from its public source, nothing copied) so the mapping is tested
without DeepDRR; where DeepDRR is installed the worker reports its own matrices as well.
"""

from __future__ import annotations

import json
import math
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsynth.errors import CancelledError, DeviceError, InputError, MedSynthError
from medsynth.geometry import CArm
from medsynth.geometry.carm import ROOM_FROM_PATIENT
from medsynth.jobs.progress import CancelToken, ProgressCallback, report

ENVIRONMENT_VARIABLE = "MEDSYNTH_DEEPDRR_PYTHON"
WORKER = Path(__file__).with_name("deepdrr_worker.py")

#: DeepDRR device axes (columns: x, y, z) in the room frame: head, patient right, anterior (HFS RAS).
DEVICE_AXES_IN_ROOM = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).T
#: MedSynth (col, row, 1) = S @ DeepDRR (u, v, 1).
MEDSYNTH_FROM_DEEPDRR_PIXELS = np.array([[0.0, 1.0, -0.5], [1.0, 0.0, -0.5], [0.0, 0.0, 1.0]])
#: MedSynth's named spectra -> DeepDRR's spectrum names.
DEEPDRR_SPECTRA = {"60kV": "60KV_AL35", "90kV": "90KV_AL40", "120kV": "120KV_AL43"}


class DeepDRRUnavailable(DeviceError):
    """DeepDRR is not configured, not importable, or cannot render here (no CUDA GPU)."""


# --- geometry mapping (pure numpy) ---------------------------------------------------------------
def _rot(axis: str, radians: float) -> np.ndarray:
    c, s = math.cos(radians), math.sin(radians)
    if axis == "x":
        return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1.0, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


@dataclass
class DeepDRRCArm:
    """The arguments of DeepDRR's ``MobileCArm`` that reproduce a MedSynth C-arm (angles in degrees)."""

    alpha: float
    beta: float
    gamma: float
    world_from_device: np.ndarray
    source_to_detector_distance: float
    source_to_isocenter_vertical_distance: float
    sensor_width: int
    sensor_height: int
    pixel_size: float

    def mobile_carm_kwargs(self) -> dict:
        """JSON-ready keyword arguments for ``deepdrr.MobileCArm`` (limits opened so nothing is clipped)."""
        return {
            "world_from_device": np.asarray(self.world_from_device, float).tolist(),
            "isocenter": [0.0, 0.0, 0.0],
            "alpha": float(self.alpha),
            "beta": float(self.beta),
            "gamma": float(self.gamma),
            "degrees": True,
            "min_alpha": -360.0,
            "max_alpha": 360.0,
            "min_beta": -360.0,
            "max_beta": 360.0,
            "source_to_detector_distance": float(self.source_to_detector_distance),
            "source_to_isocenter_vertical_distance": float(self.source_to_isocenter_vertical_distance),
            "source_to_isocenter_horizontal_offset": 0.0,
            "sensor_height": int(self.sensor_height),
            "sensor_width": int(self.sensor_width),
            "pixel_size": float(self.pixel_size),
            "rotate_camera_left": True,
            "enforce_isocenter_bounds": False,
        }


def to_deepdrr(carm: CArm) -> DeepDRRCArm:
    """DeepDRR MobileCArm parameters giving the same projection as ``carm`` (see the module docstring)."""
    from scipy.spatial.transform import Rotation

    carm.validate()
    row_spacing, col_spacing = carm.spacing_rc
    if abs(row_spacing - col_spacing) > 1e-9 * max(row_spacing, col_spacing):
        raise InputError(
            f"DeepDRR's MobileCArm has square pixels; this detector's are {row_spacing:g} x {col_spacing:g} mm. "
            "Use equal row and column spacing for the DeepDRR backend."
        )
    rotation = carm.rotation()  # columns: C-arm x (columns), y (rows), z (towards the source) in RAS
    camera_axes = np.column_stack([rotation[:, 1], rotation[:, 0], -rotation[:, 2]])  # DeepDRR u, v, depth
    device_axes = ROOM_FROM_PATIENT[carm.patient_position].T @ DEVICE_AXES_IN_ROOM
    with warnings.catch_warnings():  # gimbal lock only means the split between alpha and gamma is free
        warnings.simplefilter("ignore", UserWarning)
        beta, alpha, c = Rotation.from_matrix(device_axes.T @ camera_axes).as_euler("YXZ", degrees=True)
    gamma = (-(c + 90.0) + 180.0) % 360.0 - 180.0
    world_from_device = np.eye(4)
    world_from_device[:3, :3] = device_axes
    world_from_device[:3, 3] = carm.isocenter
    return DeepDRRCArm(alpha=float(alpha), beta=float(beta), gamma=float(gamma), world_from_device=world_from_device,
                       source_to_detector_distance=carm.sid, source_to_isocenter_vertical_distance=carm.sod,
                       sensor_width=int(carm.detector_rows), sensor_height=int(carm.detector_columns),
                       pixel_size=float(row_spacing))


def deepdrr_index_from_world(kwargs: dict) -> np.ndarray:
    """DeepDRR's ``MobileCArm(**kwargs).get_camera_projection().index_from_world`` re-derived with numpy.

    device_from_arm = [Rxy(alpha, beta) | isocenter] (extrinsic x then y rotations);
    camera3d_from_arm = Rz(90 deg if rotate_camera_left) . T(0, -horizontal offset, SOD);
    camera3d_from_world = Rz(gamma) . camera3d_from_arm . arm_from_device . device_from_world;
    index_from_world = K [I|0] camera3d_from_world, K = [[f, 0, W/2], [0, f, H/2], [0, 0, 1]], f = SID / pixel.
    """
    scale = math.pi / 180.0 if kwargs.get("degrees", True) else 1.0
    alpha, beta, gamma = (float(kwargs.get(k, 0.0)) * scale for k in ("alpha", "beta", "gamma"))
    device_from_arm = np.eye(4)
    device_from_arm[:3, :3] = _rot("y", beta) @ _rot("x", alpha)
    device_from_arm[:3, 3] = np.asarray(kwargs.get("isocenter", (0, 0, 0)), float)
    camera3d_from_arm = np.eye(4)
    camera3d_from_arm[:3, 3] = [0.0, -float(kwargs.get("source_to_isocenter_horizontal_offset", 0.0)),
                                float(kwargs["source_to_isocenter_vertical_distance"])]
    if kwargs.get("rotate_camera_left", True):
        left = np.eye(4)
        left[:3, :3] = _rot("z", math.pi / 2)
        camera3d_from_arm = left @ camera3d_from_arm
    roll = np.eye(4)
    roll[:3, :3] = _rot("z", gamma)
    world_from_device = np.asarray(kwargs.get("world_from_device", np.eye(4)), float)
    camera3d_from_world = roll @ camera3d_from_arm @ np.linalg.inv(device_from_arm) @ np.linalg.inv(world_from_device)
    focal = float(kwargs["source_to_detector_distance"]) / float(kwargs["pixel_size"])
    intrinsics = np.array([[focal, 0.0, kwargs["sensor_width"] / 2.0], [0.0, focal, kwargs["sensor_height"] / 2.0],
                           [0.0, 0.0, 1.0]])
    return intrinsics @ camera3d_from_world[:3, :]


def medsynth_matrix_from_deepdrr(index_from_world: np.ndarray) -> np.ndarray:
    """A DeepDRR projection matrix expressed in MedSynth's (col, row) pixels."""
    return MEDSYNTH_FROM_DEEPDRR_PIXELS @ np.asarray(index_from_world, float)


def image_from_deepdrr(image: np.ndarray) -> np.ndarray:
    """DeepDRR's image [v, u] as MedSynth's [row, col] (a transpose)."""
    return np.ascontiguousarray(np.asarray(image).T)


def mapping_error_pixels(carm: CArm, index_from_world: np.ndarray, points_ras: np.ndarray | None = None) -> float:
    """Largest distance in pixels between where MedSynth and a DeepDRR matrix project test points."""
    if points_ras is None:
        grid = np.linspace(-150.0, 150.0, 4)
        points_ras = np.array(np.meshgrid(grid, grid, grid)).reshape(3, -1).T + np.asarray(carm.isocenter)
    ours = carm.project_points(points_ras)
    homogeneous = np.column_stack([points_ras, np.ones(len(points_ras))]) @ medsynth_matrix_from_deepdrr(index_from_world).T
    theirs = homogeneous[:, :2] / homogeneous[:, 2:3]
    return float(np.abs(ours - theirs).max())


# --- the worker process --------------------------------------------------------------------------
def deepdrr_python() -> str | None:
    """The Python executable of the DeepDRR environment, from the environment or the settings."""
    value = os.environ.get(ENVIRONMENT_VARIABLE)
    if not value:
        from medsynth.settings import Settings

        value = Settings.load().deepdrr_python
    return value or None


@dataclass
class WorkerResult:
    status: str
    reason: str
    data: dict
    folder: Path


class DeepDRRBackend:
    """Drives ``deepdrr_worker.py`` in DeepDRR's environment."""

    def __init__(self, python: str | None = None, timeout_s: float = 1800.0) -> None:
        self.python = python or deepdrr_python()
        self.timeout_s = timeout_s

    def _require_python(self) -> str:
        if not self.python:
            raise DeepDRRUnavailable(
                "No DeepDRR environment is configured. Install DeepDRR in its own Python environment "
                "(pip install deepdrr==1.2.2 'cupy-cuda12x<14' 'cuda-python<13' numba) and set "
                f"{ENVIRONMENT_VARIABLE} (or the MedSynth hub's 'DeepDRR Python' setting) to its python executable."
            )
        if not Path(self.python).exists() and shutil.which(self.python) is None:
            raise DeepDRRUnavailable(
                f"The DeepDRR Python {self.python!r} does not exist. Point {ENVIRONMENT_VARIABLE} at the python "
                "executable inside the DeepDRR environment (e.g. /path/to/deepdrr-env/bin/python)."
            )
        return self.python

    def _run(self, request: dict, folder: Path, progress: ProgressCallback | None = None,
             cancel: CancelToken | None = None) -> WorkerResult:
        python = self._require_python()
        request = dict(request, output_dir=str(folder))
        request_path = folder / "request.json"
        request_path.write_text(json.dumps(request))
        process = subprocess.Popen([python, str(WORKER), str(request_path)], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, bufsize=1)
        lines: queue.Queue = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)
        reader.start()
        log: list[str] = []
        start = time.monotonic()
        while True:
            try:
                line = lines.get(timeout=0.1)
                if line.startswith("PROGRESS "):
                    parts = line.split(" ", 2)
                    report(progress, float(parts[1]), parts[2].strip() if len(parts) > 2 else "")
                else:
                    log.append(line.rstrip())
            except queue.Empty:
                if process.poll() is not None and not reader.is_alive():
                    break
            if cancel is not None and cancel.cancelled:
                process.kill()
                process.wait()
                raise CancelledError("DeepDRR rendering cancelled; no partial output was kept.")
            if time.monotonic() - start > self.timeout_s:
                process.kill()
                process.wait()
                raise DeviceError(f"The DeepDRR worker took longer than {self.timeout_s:.0f} s and was stopped.")
        result_path = folder / "result.json"
        if not result_path.exists():
            tail = "\n".join(log[-15:])
            raise DeepDRRUnavailable(
                f"The DeepDRR worker ({python}) ended with code {process.returncode} without a result. "
                f"Its last output:\n{tail}"
            )
        data = json.loads(result_path.read_text())
        return WorkerResult(data.get("status", "error"), data.get("reason", ""), data, folder)

    def probe(self) -> dict:
        """What the DeepDRR environment offers: {"importable", "version", "cuda", "reason"}."""
        with tempfile.TemporaryDirectory(prefix="medsynth-deepdrr-") as temp:
            result = self._run({"mode": "probe", "carms": []}, Path(temp))
        return {
            "importable": result.status == "ok",
            "version": result.data.get("deepdrr_version"),
            "cuda": bool(result.data.get("cuda")),
            "reason": result.reason or result.data.get("cuda_reason", ""),
        }

    def index_from_world(self, carms: list[CArm]) -> list[np.ndarray]:
        """DeepDRR's own projection matrices for the mapped C-arms (needs DeepDRR, not a GPU)."""
        with tempfile.TemporaryDirectory(prefix="medsynth-deepdrr-") as temp:
            result = self._run({"mode": "geometry", "carms": [to_deepdrr(c).mobile_carm_kwargs() for c in carms]},
                               Path(temp))
        if result.status != "ok":
            raise DeepDRRUnavailable(result.reason)
        return [np.array(m, float) for m in result.data["index_from_world"]]

    def render(self, volume, carms: list[CArm], spectrum: str = "90kV", photons: int | None = None,
               step_mm: float = 0.1, progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None) -> list[np.ndarray]:
        """Detected intensity images [row, col] rendered by DeepDRR, one per C-arm.

        Raises DeepDRRUnavailable (with DeepDRR's reason) when it cannot render here, e.g. without a
        CUDA GPU; the rest of MedSynth renders on the CPU or with its own CUDA kernels.
        """
        from medsynth.io import write_volume

        if spectrum not in DEEPDRR_SPECTRA:
            raise InputError(f"DeepDRR ships the spectra {', '.join(DEEPDRR_SPECTRA)}; {spectrum!r} is not one of them.")
        volume.require_hu()
        kwargs = [to_deepdrr(c).mobile_carm_kwargs() for c in carms]
        with tempfile.TemporaryDirectory(prefix="medsynth-deepdrr-") as temp:
            folder = Path(temp)
            report(progress, 0.0, "Writing the CT for DeepDRR")
            write_volume(volume, folder / "ct.nii.gz")
            request = {"mode": "render", "volume": str(folder / "ct.nii.gz"), "ijk_to_ras": volume.ijk_to_ras.tolist(),
                       "carms": kwargs, "spectrum": DEEPDRR_SPECTRA[spectrum], "photon_count": int(photons or 10000),
                       "add_noise": photons is not None, "step": float(step_mm)}
            result = self._run(request, folder, progress, cancel)
            if result.status in ("skipped", "unavailable"):
                raise DeepDRRUnavailable(result.reason)
            if result.status != "ok":
                raise MedSynthError(f"DeepDRR failed: {result.reason}")
            for matrix, carm in zip(result.data["index_from_world"], carms):
                error = mapping_error_pixels(carm, np.array(matrix))
                if error > 1e-3:
                    raise MedSynthError(f"DeepDRR's C-arm differs from MedSynth's by {error:.3g} pixels; not using it.")
            images = [image_from_deepdrr(np.load(folder / name)) for name in result.data["images"]]
        report(progress, 1.0, "DeepDRR images ready")
        return images


