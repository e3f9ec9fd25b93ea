"""Dual-energy pairs from the DRR engine: single-energy radiograph -> bone-only / soft-tissue-only images.

One ray march per C-arm pose gives per-material area densities; from them the DRR engine computes,
without marching again, the single-energy (polychromatic) line integral and the material-selective
ones (only bone, only soft tissue). Random poses (LAO/RAO, CRAN/CAUD, isocentre offsets) around a
real CT make many physically consistent pairs from one patient: the pix2pix seed's data, computed
instead of taken from a single dual-energy acquisition. Held-out poses form the validation split.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from medsynth.errors import InputError
from medsynth.io.atomic import atomic_output
from medsynth.jobs.progress import CancelToken, ProgressCallback, report, sub_progress
from medsynth.volume import Volume

PAIRS_KIND = "medsynth-pairs"
TARGETS = ("bone", "soft_tissue")


@dataclass
class DualEnergySpec:
    poses: int = 96
    size: int = 64  # detector pixels (rows = columns)
    preset: str = "mobile"
    primary_range: tuple[float, float] = (-45.0, 45.0)  # LAO(+)/RAO(-) degrees
    secondary_range: tuple[float, float] = (-25.0, 25.0)  # CRAN(+)/CAUD(-) degrees
    isocenter_jitter_mm: float = 60.0  # uniform offset of the isocentre from the CT centre, per axis
    spectrum: str = "90kV"
    photons: float | None = None  # incident photons per pixel for the single-energy input (None: noise-free)
    val_fraction: float = 0.2
    seed: int = 0

    def validate(self) -> None:
        if int(self.poses) < 2:
            raise InputError(f"Dual-energy pairs need at least 2 poses (train and held-out), got {self.poses}.")
        if not 8 <= int(self.size) <= 2048:
            raise InputError(f"Detector size must be between 8 and 2048 pixels, got {self.size}.")
        if not 0.0 < float(self.val_fraction) < 1.0:
            raise InputError(f"val_fraction must be between 0 and 1, got {self.val_fraction}.")


def random_poses(ct: Volume, spec: DualEnergySpec) -> list:
    """Seeded random C-arm poses around the CT centre, the detector read out at spec.size pixels."""
    from medsynth.geometry import load_preset

    base = load_preset(spec.preset)
    width_mm = base.detector_size_mm[1] if hasattr(base, "detector_size_mm") else base.detector_columns * base.spacing_rc[1]
    if isinstance(width_mm, tuple):
        width_mm = width_mm[1]
    pixel = float(width_mm) / int(spec.size)
    rng = np.random.default_rng(spec.seed)
    poses = []
    for _ in range(int(spec.poses)):
        offset = rng.uniform(-spec.isocenter_jitter_mm, spec.isocenter_jitter_mm, 3)
        poses.append(base.replace(
            primary_angle=float(rng.uniform(*spec.primary_range)),
            secondary_angle=float(rng.uniform(*spec.secondary_range)),
            detector_rows=int(spec.size), detector_columns=int(spec.size), pixel_spacing=(pixel, pixel),
            isocenter=tuple(float(v) for v in ct.center_ras + offset)))
    return poses


def _window(stack: np.ndarray) -> dict:
    high = float(np.percentile(stack, 99.9)) * 1.05
    return {"low": 0.0, "high": max(high, 1e-3), "units": "line integral"}


def build_dual_energy_pairs(ct: Volume, out_dir: str | Path, spec: DualEnergySpec | None = None, patient: str = "patient",
                            progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Path:
    """Write ``out_dir/{train,val}.npz`` (``source``, ``bone``, ``soft_tissue`` line integrals, angles) + manifest.

    ``source`` is the single-energy polychromatic line integral -ln(I/I0) at ``spec.spectrum``;
    ``bone`` and ``soft_tissue`` (and every other material, e.g. ``air`` which holds the lungs) the
    same detector signal through that material alone (noise-free).
    """
    from medsynth.drr import prepare, project

    spec = spec or DualEnergySpec()
    spec.validate()
    ct.require_hu()
    clamped = ct.with_array(np.maximum(np.asarray(ct.array, np.float32), -1024.0))  # scanner padding is not tissue
    report(progress, 0.0, "preparing the CT")
    prepared = prepare(clamped)
    poses = random_poses(ct, spec)
    projections = project(prepared, poses, spectrum=spec.spectrum, photons=spec.photons, outputs=("intensity", "log", "materials"),
                          seed=spec.seed, progress=sub_progress(progress, 0.05, 0.95), cancel=cancel)
    missing = [t for t in TARGETS if f"{t}_log" not in projections[0].images]
    if missing:
        raise InputError(f"The DRR materials {projections[0].material_names} lack {missing}: use the default HU materials.")
    arrays = {"source": np.stack([p.images["log"] for p in projections]).astype(np.float32)}
    for name in projections[0].material_names:  # the targets, and the other materials (air/lung) for checks
        arrays[name] = np.stack([p.images[f"{name}_log"] for p in projections]).astype(np.float32)
    arrays["primary_angle"] = np.array([p.primary_angle for p in poses], np.float32)
    arrays["secondary_angle"] = np.array([p.secondary_angle for p in poses], np.float32)
    arrays["pixel_spacing_mm"] = np.full(len(poses), poses[0].spacing_rc[0], np.float32)
    order = np.random.default_rng(spec.seed + 1).permutation(len(poses))
    n_val = max(1, int(round(len(poses) * spec.val_fraction)))
    splits = {"val": np.sort(order[:n_val]), "train": np.sort(order[n_val:])}
    out_dir = Path(out_dir)
    with atomic_output(out_dir, directory=True) as temp:
        for split, indices in splits.items():
            np.savez_compressed(temp / f"{split}.npz", **{k: v[indices] for k, v in arrays.items()})
        train = splits["train"]
        manifest = {
            "kind": PAIRS_KIND, "version": 1, "patient": patient, "image_size": int(spec.size),
            "pixel_spacing_mm": float(poses[0].spacing_rc[0]), "counts": {k: int(len(v)) for k, v in splits.items()},
            "source": f"single-energy polychromatic line integral at {spec.spectrum}",
            "targets": list(TARGETS), "source_window": _window(arrays["source"][train]),
            "target_windows": {t: _window(arrays[t][train]) for t in TARGETS},
            "materials": projections[0].material_names, "spec": asdict(spec), "ct": ct.metadata.source,
        }
        (temp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        _preview(temp / "preview.png", arrays, manifest)
    report(progress, 1.0, f"{len(poses)} poses ({n_val} held out)")
    return out_dir


def _preview(path: Path, arrays: dict, manifest: dict) -> None:
    from medsynth.generative.intensity import IntensityWindow
    from medsynth.generative.pictures import save_rows, unit_to_uint8

    unit = IntensityWindow(-1, 1, "normalized")
    windows = {"source": manifest["source_window"], **manifest["target_windows"]}
    rows = [[unit_to_uint8(IntensityWindow.from_dict(windows[name]).to_unit(arrays[name][i]), unit)
             for name in ("source", *TARGETS)] for i in range(min(4, len(arrays["source"])))]
    save_rows(rows, ["single energy", "bone only", "soft tissue only"], path)
