#!/usr/bin/env python
"""Train MedSynth's small demo models on the fetchable real scans and ship them with their recipe.

    python scripts/train_demo_models.py                      # all demo models
    python scripts/train_demo_models.py --only spade_ct      # one of them
    python scripts/train_demo_models.py --only spade_ct_256  # a 256 px model (recipe: generative/recipes/)

Each model goes to MedSynth/medsynth/generative/weights/<name>.pt (float16 weights) with
<name>.yaml beside it: the exact dataset recipe, training config, command, SHA-256, size, the
validation metrics of the shipped checkpoint and the machine it was trained on. The recipes are
sized for a 2-core CPU (minutes, 64x64 slices at 5.5 mm pixels); on a GPU raise size, steps and
channels in DEMOS below and run the same script.

Data: LIDC-IDRI-0001 (chest + upper abdomen) and TotalSegmentator's 20-slice contrast CT train the
label-map models; TotalSegmentator's small upper-abdomen CT is held out (validation: best-checkpoint
choice and the quality benchmark). pix2pix trains on dual-energy DRR pairs of LIDC-IDRI-0001 at
many C-arm poses (held-out poses for validation).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "MedSynth" / "medsynth" / "generative" / "weights"

CT_CLASSES = ["background", "soft_tissue", "lung", "liver", "bone", "vessels"]
SLICE_SPEC = {"classes": CT_CLASSES, "unknown": "soft_tissue", "axis": "axial", "size": 64,
              "pixel_spacing_mm": 5.5, "remove_background": True, "min_body_fraction": 0.05}

DEMOS = {
    "spade_ct": {
        "family": "spade_gan",
        "description": "SPADE/OASIS GAN: TotalSegmentator-style organ label map -> CT slice (64 px, 5.5 mm)",
        "data": {"dataset": "ct_slices", "window": {"low": -1000, "high": 1000, "units": "HU"}},
        "model": {"z_dim": 16, "channels": [64, 48, 32, 16], "spade_hidden": 16},
        "train": {"steps": 2000, "batch_size": 4, "discriminator": "segmentation", "discriminator_channels": [16, 32, 64],
                  "l1_weight": 5.0, "mask_loss_weight": 1.0, "checkpoint_every": 100, "validate_every": 100,
                  "val_samples": 16, "log_every": 10, "threads": 1, "seed": 0},
    },
    "diffusion_ct": {
        "family": "semantic_diffusion",
        "description": "Semantic diffusion (SPADE diffusion U-Net, DDIM + guidance): organ label map -> CT slice (64 px)",
        "data": {"dataset": "ct_slices", "window": {"low": -1000, "high": 1000, "units": "HU"}},
        "model": {"channels": [16, 32, 64], "attention_levels": [False, False, True], "norm_num_groups": 8,
                  "num_head_channels": 32, "spade_hidden": 16, "label_dropout": 0.2, "prediction": "v", "default_steps": 50,
                  "default_guidance": 1.5},
        "train": {"steps": 1000, "batch_size": 4, "lr": 4e-4, "checkpoint_every": 100, "validate_every": 100,
                  "val_samples": 8, "val_steps": 10, "log_every": 10, "threads": 1, "seed": 0},
    },
    "pix2pix_bone": {
        "family": "pix2pix",
        "description": "pix2pix: single-energy DRR -> bone-only DRR (64 px), trained on physically computed pairs",
        "data": {"dataset": "drr_pairs"},
        "model": {"channels": [16, 32, 64, 128], "num_res_units": 1, "source": "single_energy", "target": "bone"},
        "train": {"steps": 800, "batch_size": 4, "lr": 1e-3, "l1_weight": 100.0, "discriminator_channels": 32,
                  "checkpoint_every": 100, "validate_every": 100, "val_samples": 16, "log_every": 10,
                  "threads": 1, "seed": 0},
    },
}


RECIPES = REPO / "MedSynth" / "medsynth" / "generative" / "recipes"
#: The 256 px models: one shipped YAML per model (recipes/<name>.yaml) and one for their dataset.
RECIPE_MODELS = ("spade_ct_256", "diffusion_ct_256")


def recipe(name: str) -> dict:
    return yaml.safe_load((RECIPES / f"{name}.yaml").read_text())


def build_ct_slices_256(work: Path) -> Path:
    """The patient-split 256 px slice dataset of recipes/ct_slices_256.yaml (2.5D: neighbours stored)."""
    from medsynth.data import fetch
    from medsynth.generative.datasets import SliceCase, SliceDatasetSpec, build_slice_dataset

    out = work / "ct_slices_256"
    if (out / "manifest.json").exists():
        return out
    spec = recipe("ct_slices_256")
    table = fetch(spec["label_table"]["dataset"]) / spec["label_table"]["file"]
    cases = [SliceCase(case["patient"], fetch(case["dataset"]) / case["ct"], fetch(case["dataset"]) / case["labels"],
                       table, split=case["split"]) for case in spec["cases"]]
    return build_slice_dataset(cases, out, SliceDatasetSpec(**spec["spec"]))


def build_ct_slices(work: Path) -> Path:
    from medsynth.data import fetch
    from medsynth.generative.datasets import SliceCase, SliceDatasetSpec, build_slice_dataset

    out = work / "ct_slices"
    if (out / "manifest.json").exists():
        return out
    lidc, totalseg = fetch("lidc"), fetch("totalseg")
    table = lidc / "structures.csv"
    cases = [
        SliceCase("LIDC-IDRI-0001", lidc / "ct.nii.gz", lidc / "labels.nii.gz", table, split="train"),
        SliceCase("TotalSegmentator-contrast-dicom", totalseg / "dicom", totalseg / "seg_dicom.nii.gz", table, split="train"),
        SliceCase("TotalSegmentator-small", totalseg / "ct_sm.nii.gz", totalseg / "seg_sm.nii.gz", table, split="val"),
    ]
    return build_slice_dataset(cases, out, SliceDatasetSpec(**SLICE_SPEC))


def build_drr_pairs(work: Path) -> Path:
    from medsynth.data import fetch
    from medsynth.generative.datasets.dual_energy import DualEnergySpec, build_dual_energy_pairs
    from medsynth.io import read_volume

    out = work / "drr_pairs"
    if (out / "manifest.json").exists():
        return out
    ct = read_volume(fetch("lidc") / "ct.nii.gz", modality="CT")
    return build_dual_energy_pairs(ct, out, DualEnergySpec(**PAIRS_SPEC), patient="LIDC-IDRI-0001")


PAIRS_SPEC = {"poses": 96, "size": 64, "val_fraction": 0.2, "seed": 0}


def finished_run(config: dict):
    """The result of a run that already reached the recipe's steps (only re-export it), else None."""
    import json
    from types import SimpleNamespace

    output = Path(config["output"])
    summary = output / "summary.json"
    if not summary.exists():
        return None
    done = json.loads(summary.read_text())
    if done["steps"] < config["train"]["steps"]:
        return None
    best = output / "best.pt"
    return SimpleNamespace(steps=done["steps"], best_path=best if best.exists() else None, final_path=output / "final.pt",
                           total_seconds=done.get("seconds_all_runs", done["seconds_this_run"]))


def train_demo(name: str, work: Path) -> dict:
    from medsynth.generative.checkpoint import read_checkpoint, sha256_of
    from medsynth.generative.training import export_weights, train

    recipe = DEMOS[name] if name in DEMOS else globals()["recipe"](name)
    builders = {"ct_slices": build_ct_slices, "ct_slices_256": build_ct_slices_256, "drr_pairs": build_drr_pairs}
    dataset = builders[recipe["data"]["dataset"]](work)
    config = {**recipe, "data": {**recipe["data"], "dataset": str(dataset)}, "output": str(work / "runs" / name)}
    result = finished_run(config)
    if result is None:  # train, or continue a run that has fewer steps than the recipe
        result = train(config, resume=(Path(config["output"]) / "last.pt").exists(),
                       progress=lambda f, m: print(f"\r{name}: {100 * f:5.1f}% {m}", end="", file=sys.stderr, flush=True))
        print(file=sys.stderr)
    WEIGHTS.mkdir(parents=True, exist_ok=True)
    # the 256 px models validate on the held-out patient of the quality benchmark: ship the final weights,
    # so no choice is made on the benchmark's data
    chosen = result.final_path if name in RECIPE_MODELS else (result.best_path or result.final_path)
    shipped = export_weights(chosen, WEIGHTS / f"{name}.pt", half=True)
    payload = read_checkpoint(shipped)
    record = {
        "name": name, "family": recipe["family"], "description": recipe["description"], "file": shipped.name,
        "sha256": sha256_of(shipped), "size_bytes": shipped.stat().st_size,
        "command": f"python scripts/train_demo_models.py --only {name}",
        "trained_on": {"machine": f"{platform.machine()} {os.cpu_count()}-core CPU", "torch_threads": recipe["train"]["threads"],
                       "seconds": round(result.total_seconds, 1), "steps": result.steps},
        "dataset_recipe": {"ct_slices": SLICE_SPEC, "drr_pairs": PAIRS_SPEC}.get(recipe["data"]["dataset"])
        or globals()["recipe"](recipe["data"]["dataset"]),
        "training_config": {k: v for k, v in recipe.items() if k != "description"},
        "shipped_checkpoint": {"step": payload["meta"].get("step"), "best": payload["meta"].get("best"),
                               "val_metrics": payload["meta"].get("val_metrics")},
        "class_names": payload["meta"].get("class_names"), "image_size": payload["meta"]["image_size"],
        "pixel_spacing_mm": payload["meta"].get("pixel_spacing_mm"), "window": payload["meta"]["window"],
    }
    (WEIGHTS / f"{name}.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = list(DEMOS) + list(RECIPE_MODELS)
    parser.add_argument("--only", default=",".join(names), help=f"comma-separated subset of {', '.join(names)}")
    parser.add_argument("--work", default=str(Path(os.environ.get("MEDSYNTH_WORK", "/tmp")) / "medsynth_demo_training"),
                        help="folder for datasets and training runs (not committed)")
    args = parser.parse_args(argv)
    work = Path(args.work)
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        if name not in names:
            parser.error(f"unknown demo model {name!r}; choose from {', '.join(names)}")
        record = train_demo(name, work)
        print(f"{name}: {record['size_bytes'] / 1e6:.2f} MB, sha256 {record['sha256'][:16]}..., "
              f"best {record['shipped_checkpoint']['best']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
