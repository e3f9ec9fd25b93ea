"""The public entry point: ``project(ct, carm_or_poses, ...) -> list[Projection]``.

One ray march per pose gives each pixel's per-material area densities A_m (g/cm^2). Everything
else is computed from them without marching again: the polychromatic image for any spectrum
(``I/I0 = sum_E S(E) E exp(-sum_m mu/rho_m(E) A_m) / sum_E S(E) E``, an energy-integrating detector),
a dual-energy pair, material-selective images (bone only, soft tissue only), then optional
scatter, photon noise and detector blur.

Live previews (a slider in Slicer): prepare once, then project at reduced resolution::

    prepared = medsynth.drr.prepare(ct)                  # ~0.2-1 s, once per CT and materials
    view = medsynth.drr.project(prepared, carm, preview=256)[0]   # tens of ms per pose

``preview=N`` keeps the field of view, reads the detector out at about N x N pixels and marches
a half-resolution copy of the volume (cached on ``prepared``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from medsynth.drr.display import to_uint8
from medsynth.drr.materials import Material
from medsynth.drr.noise import detector_blur, poisson_noise
from medsynth.drr.prepare import PreparedVolume, prepare
from medsynth.drr.raysetup import ray_setup
from medsynth.drr.scatter import ScatterModel
from medsynth.drr.spectra import Spectrum, spectrum as make_spectrum
from medsynth.errors import InputError
from medsynth.geometry import CArm
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report, sub_progress
from medsynth.jobs.threads import PARALLEL_KERNELS
from medsynth.volume import Volume, VolumeMetadata

#: Image kinds ``outputs`` may ask for (area densities are always kept).
OUTPUTS = ("intensity", "log", "dual_energy", "materials")


@dataclass
class Projection:
    """One DRR. Arrays are indexed [row, col] (row 0 at the image top, see medsynth.geometry).

    - ``area_density``: (rows, cols, materials) g/cm^2, material order ``material_names``.
    - ``images``: calibrated images by name: "intensity" (transmitted energy fraction I/I0, with
      scatter/noise/blur if asked), "log" (-ln of it: the polychromatic line integral), and
      optionally "low_log"/"high_log" (dual energy) and "<material>_log" (material-selective).
    """

    carm: CArm
    material_names: list[str]
    area_density: np.ndarray
    spectrum: Spectrum
    images: dict[str, np.ndarray] = field(default_factory=dict)
    materials: list[Material] = field(default_factory=list, repr=False)
    settings: dict = field(default_factory=dict)

    @property
    def intensity(self) -> np.ndarray:
        return self.images["intensity"]

    @property
    def log_image(self) -> np.ndarray:
        """-ln(I/I0): the calibrated polychromatic line integral."""
        return self.images["log"]

    def material_area_density(self, name: str) -> np.ndarray:
        if name not in self.material_names:
            raise InputError(f"No material {name!r} in this projection; it has {', '.join(self.material_names)}.")
        return self.area_density[..., self.material_names.index(name)]

    def as_volume(self, kind: str = "log") -> Volume:
        """A one-slice Volume of an image (i = column, j = row) placed in the detector plane in RAS."""
        if kind in self.images:
            pixels = self.images[kind]
        elif kind.startswith("area_density:"):
            pixels = self.material_area_density(kind.split(":", 1)[1])
        else:
            raise InputError(
                f"Unknown image {kind!r}. Available: {', '.join(self.images)}, "
                + ", ".join(f"area_density:{n}" for n in self.material_names)
            )
        return detector_volume(self.carm, pixels, kind)

    def display(self, kind: str = "log", window: tuple[float, float] | None = None) -> tuple[np.ndarray, tuple[float, float]]:
        """8-bit picture (bone bright for "log" images, like a radiograph) and the window used."""
        image = self.as_volume(kind).array[0]
        return to_uint8(image, window=window, invert=(kind == "intensity"))


def detector_volume(carm: CArm, pixels: np.ndarray, kind: str = "image") -> Volume:
    """Place a (rows, cols) image in the detector plane: i = column, j = row, k = towards the source."""
    row_spacing, col_spacing = carm.spacing_rc
    rotation = carm.rotation()
    matrix = np.eye(4)
    matrix[:3, 0] = rotation[:, 0] * col_spacing
    matrix[:3, 1] = rotation[:, 1] * row_spacing
    matrix[:3, 2] = rotation[:, 2]
    matrix[:3, 3] = carm.pixel_to_ras(0.0, 0.0)
    units = {"log": "line integral", "intensity": "I/I0"}.get(kind, kind)
    meta = VolumeMetadata(modality="DRR", units=units, extra={"kind": kind, "synthetic": True})
    return Volume(np.asarray(pixels, dtype=np.float32)[np.newaxis], matrix, meta)


def polychromatic(
    area: np.ndarray, materials: Sequence[Material], spec: Spectrum, only: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(energy fraction, photon fraction) transmitted, per pixel, for one spectrum."""
    from medsynth.drr.kernels.beer_lambert import polychromatic as kernel

    rows, cols, n_mat = area.shape
    mu = np.empty((len(spec.energies_keV), n_mat))
    for index, mat in enumerate(materials):
        selected = only is None or mat.name in only
        if not selected:
            mu[:, index] = 0.0
        elif mat.composition:
            mu[:, index] = mat.mass_attenuation(spec.energies_keV)
        else:  # plastimatch's model: A already is the line integral
            mu[:, index] = 1.0
    if only is not None:
        unknown = set(only) - {m.name for m in materials}
        if unknown:
            raise InputError(f"No material {sorted(unknown)} here; materials are {[m.name for m in materials]}.")
    energy = np.empty(rows * cols, np.float32)
    photons = np.empty(rows * cols, np.float32)
    with PARALLEL_KERNELS:
        kernel(np.ascontiguousarray(area.reshape(-1, n_mat)), mu, spec.fluence.astype(np.float64),
               spec.energies_keV.astype(np.float64), energy, photons)
    return energy.reshape(rows, cols), photons.reshape(rows, cols)


def _log(intensity: np.ndarray) -> np.ndarray:
    return (-np.log(np.maximum(intensity, 1e-12))).astype(np.float32)


def _preview_carm(carm: CArm, size: int) -> CArm:
    rows, cols = carm.detector_rows, carm.detector_columns
    factor = max(rows, cols) / float(size)
    if factor <= 1:
        return carm
    new_rows, new_cols = max(1, round(rows / factor)), max(1, round(cols / factor))
    height, width = carm.detector_size_mm
    return carm.replace(detector_rows=new_rows, detector_columns=new_cols,
                        pixel_spacing=(height / new_rows, width / new_cols))


def choose_device(device: str) -> str:
    """"cpu", "cuda", or "auto" (CUDA when a real GPU is usable, else CPU)."""
    from medsynth.drr.kernels.cuda import cuda_status, is_simulator, require_cuda

    device = str(device).lower()
    if device == "cpu":
        return "cpu"
    if device == "cuda":
        require_cuda()
        return "cuda"
    if device == "auto":
        usable, _ = cuda_status()
        return "cuda" if usable and not is_simulator() else "cpu"
    raise InputError(f"Unknown device {device!r}: use 'auto', 'cpu' or 'cuda'.")


#: Rays per band of a CPU march: a cancel is noticed after at most one band (~0.1 s at 512 x 512).
BAND_RAYS = 128 * 1024


def march(prepared: PreparedVolume, carm: CArm, device: str = "cpu", cancel: CancelToken | None = None) -> np.ndarray:
    """Per-material area densities (rows, cols, materials) in g/cm^2 for one pose.

    The CPU marches large detectors in bands of rows and checks ``cancel`` between them, so a
    cancel stops a long render within a band; bands give bit-identical results (each ray is alone).
    """
    from medsynth.drr.kernels import cpu

    setup = ray_setup(prepared.ijk_to_ras, carm)
    n_mat = len(prepared.materials)
    if device == "cuda":
        from medsynth.drr.kernels.cuda import CudaMarcher

        marcher = getattr(prepared, "_cuda_marcher", None)
        if marcher is None:
            marcher = CudaMarcher(prepared.packed)
            prepared._cuda_marcher = marcher
        out = marcher.march(setup, n_mat)
    else:
        out = np.empty((setup.n_outer, setup.n_inner, n_mat), dtype=np.float32)
        flat, strides = prepared.march_buffer()
        rows_flat, rows_strides = prepared.march_buffer(along_rows=True) if setup.along_rows else (flat, strides)
        shape = np.array(prepared.packed.shape, np.int64)
        band = max(1, BAND_RAYS // max(1, setup.n_inner))
        for first in range(0, setup.n_outer, band):
            check_cancel(cancel)
            count = min(band, setup.n_outer - first)
            with PARALLEL_KERNELS:
                cpu.march(flat, strides, rows_flat, rows_strides, shape, setup.source, setup.origin, setup.outer,
                          setup.inner, first, count, setup.n_inner, setup.metric, out)
    return np.ascontiguousarray(out.transpose(1, 0, 2)) if setup.transposed else out


def warm_up() -> float:
    """Load the CPU kernels from numba's disk cache with one tiny projection; returns the seconds.

    The first use after an install compiles them instead (tens of seconds, once per machine).
    The DRR module runs this in the background when it opens, so a user's first DRR need not wait.
    """
    start = time.perf_counter()
    air = Volume(np.full((4, 4, 4), -1000.0, np.float32), metadata=VolumeMetadata(modality="CT", units="HU"))
    carm = CArm(sid=1000.0, sod=600.0, detector_rows=16, detector_columns=16, pixel_spacing=1.0,
                isocenter=tuple(air.center_ras))
    project(air, carm, device="cpu")
    return time.perf_counter() - start


def project(
    volume: "Volume | PreparedVolume",
    carm: "CArm | Iterable[CArm]",
    *,
    materials=None,
    spectrum: "str | float | Spectrum" = "90kV",
    photons: float | None = None,
    outputs: Sequence[str] = ("intensity", "log"),
    dual_energy: tuple[str, str] = ("60kV", "120kV"),
    scatter: ScatterModel | bool | None = None,
    blur_sigma: float = 0.0,
    seed: int | np.random.Generator | None = None,
    device: str = "auto",
    preview: int | None = None,
    validate: bool = True,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[Projection]:
    """DRRs of a CT in HU for one or many C-arm poses (one Projection per pose).

    ``materials``: None (DeepDRR's HU thresholds), ``(label_map, {label pattern: material})``, an
    ``HUThresholds``/``LabelMaterials``, or "plastimatch" (monochromatic mu model). Ignored when
    ``volume`` is already a PreparedVolume. ``photons``: incident photons per pixel for Poisson noise
    (None: noise-free). ``scatter``: True or a ScatterModel to add the approximate scatter.
    ``blur_sigma``: detector blur in pixels. ``seed``: noise generator (reproducible with an int).
    ``outputs``: any of "intensity", "log", "dual_energy", "materials". ``preview``: detector
    size for a fast reduced-resolution view (see the module docstring).
    """
    poses = [carm] if isinstance(carm, CArm) else list(carm)
    if not poses:
        raise InputError("No C-arm pose was given. Pass a CArm or a list of them.")
    if not all(isinstance(p, CArm) for p in poses):
        raise InputError("Poses must be medsynth.geometry.CArm objects (load_preset('mobile') gives one).")
    unknown = set(outputs) - set(OUTPUTS)
    if unknown:
        raise InputError(f"Unknown outputs {sorted(unknown)}; choose from {', '.join(OUTPUTS)}.")
    if blur_sigma < 0:
        raise InputError(f"blur_sigma must be >= 0 pixels, got {blur_sigma}.")
    if photons is not None and not (np.isfinite(photons) and photons > 0):
        raise InputError(f"The photon count must be a positive number per pixel (e.g. 10000), got {photons!r}.")
    spec = make_spectrum(spectrum)
    pair = [make_spectrum(s) for s in dual_energy] if "dual_energy" in outputs else []
    scatter_model = ScatterModel() if scatter is True else (scatter or None)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    used_device = choose_device(device)

    prepared = prepare(volume, materials, progress=sub_progress(progress, 0.0, 0.1))
    grid = prepared.coarse() if preview else prepared
    if preview:
        if int(preview) < 8:
            raise InputError(f"A preview needs at least 8 x 8 pixels, got {preview}.")
        poses = [_preview_carm(p, int(preview)) for p in poses]
    if validate:
        for pose in poses:
            pose.validate(prepared.volume)
    results = []
    for index, pose in enumerate(poses):
        check_cancel(cancel)
        area = march(grid, pose, used_device, cancel)
        results.append(_finish(area, pose, prepared, spec, pair, outputs, scatter_model, photons, blur_sigma, rng,
                               dict(device=used_device, preview=preview, spectrum=spec.name, photons=photons,
                                    blur_sigma=blur_sigma, scatter=None if scatter_model is None else vars(scatter_model),
                                    mode=prepared.mode)))
        report(progress, 0.1 + 0.9 * (index + 1) / len(poses), f"view {index + 1}/{len(poses)}")
    return results


def _finish(area, pose, prepared, spec, pair, outputs, scatter_model, photons, blur_sigma, rng, settings) -> Projection:
    projection = Projection(pose, prepared.material_names, area, spec, materials=list(prepared.materials),
                            settings=settings)

    def detect(spectrum: Spectrum, only=None, effects: bool = True) -> np.ndarray:
        energy, photon = polychromatic(area, prepared.materials, spectrum, only=only)
        if effects and scatter_model is not None:
            extra = scatter_model.scatter(energy, pose.spacing_rc)
            ratio = np.where(energy > 0, photon / np.maximum(energy, 1e-30), 1.0)
            energy, photon = energy + extra, photon + extra * ratio
        if effects and photons is not None:
            energy = poisson_noise(energy, photon, photons, rng)
        if effects and blur_sigma:
            energy = detector_blur(energy, blur_sigma)
        return energy.astype(np.float32)

    intensity = detect(spec)
    projection.images["intensity"] = intensity
    projection.images["log"] = _log(intensity)
    if "dual_energy" in outputs:
        for label, spectrum in zip(("low", "high"), pair):
            low_intensity = detect(spectrum)
            projection.images[f"{label}_intensity"] = low_intensity
            projection.images[f"{label}_log"] = _log(low_intensity)
        projection.settings["dual_energy"] = [s.name for s in pair]
    if "materials" in outputs:
        for name in prepared.material_names:
            projection.images[f"{name}_log"] = _log(detect(spec, only=[name], effects=False))
    return projection
