"""CycleGAN simulated -> real radiographs, end to end on the user's own radiographs.

``train_sim_to_real(real_folder, out)`` renders the simulated side (DRRs of a CT at random C-arm
poses, with noise), builds the unpaired set against the user's folder of DICOM/PNG radiographs,
trains the CycleGAN of ``recipes/cyclegan_sim2real.yaml`` and, when asked, registers the result as
a ``sim_to_real_radiograph`` model. Every step's output stays in ``out`` (simulated/, unpaired/,
run/), so an interrupted run resumes from its last checkpoint.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import yaml

from medsynth.errors import InputError
from medsynth.jobs.progress import CancelToken, ProgressCallback, report, sub_progress

RECIPE = Path(__file__).with_name("recipes") / "cyclegan_sim2real.yaml"


def load_recipe(overrides: dict | None = None, path: str | Path | None = None) -> dict:
    """The shipped recipe (or the one at ``path``) with ``overrides`` merged section by section
    ({"train": {"steps": 10}})."""
    source = Path(path) if path else RECIPE
    if not source.is_file():
        raise InputError(f"The recipe {source} does not exist.")
    recipe = yaml.safe_load(source.read_text())
    if not isinstance(recipe, dict) or set(recipe) != {"simulated", "unpaired", "model", "train"}:
        raise InputError(f"{source} must hold the sections simulated, unpaired, model and train (see {RECIPE.name}).")
    for section, values in (overrides or {}).items():
        if section not in recipe:
            raise InputError(f"Unknown sim-to-real recipe section {section!r}; sections: {', '.join(recipe)}.")
        recipe[section] = {**recipe[section], **values}
    return recipe


def _read_ct(source):
    from medsynth.data import fetch
    from medsynth.io import read_volume
    from medsynth.volume import Volume

    if isinstance(source, Volume):
        return source
    path = Path(str(source))
    if not path.exists():
        path = fetch(str(source)) / "ct.nii.gz"  # a fetched dataset's name
    return read_volume(path, modality="CT")


def simulated_radiographs(settings: dict, progress: ProgressCallback | None = None,
                          cancel: CancelToken | None = None) -> list[np.ndarray]:
    """DRR line integrals (bright = attenuating, like the real side after reading) at random poses."""
    from medsynth.drr import prepare, project
    from medsynth.generative.datasets.dual_energy import DualEnergySpec, random_poses

    ct = _read_ct(settings["ct"])
    ct.require_hu()
    spec = DualEnergySpec(poses=int(settings["poses"]), size=int(settings["size"]), preset=settings["preset"],
                          spectrum=settings["spectrum"], photons=settings.get("photons"), seed=int(settings["seed"]))
    spec.validate()
    prepared = prepare(ct.with_array(np.maximum(np.asarray(ct.array, np.float32), -1024.0)))
    projections = project(prepared, random_poses(ct, spec), spectrum=spec.spectrum, photons=spec.photons,
                          outputs=("log",), seed=spec.seed, progress=progress, cancel=cancel)
    return [np.asarray(p.images["log"], np.float32) for p in projections]


def train_sim_to_real(real: str | Path, out_dir: str | Path, recipe: dict | None = None, register_as: str | None = None,
                      resume: bool | None = None, progress: ProgressCallback | None = None,
                      cancel: CancelToken | None = None) -> dict:
    """Train the recipe's CycleGAN from simulated DRRs to the radiographs in ``real``; return a summary.

    ``register_as`` adds the best checkpoint to the user registry under that id (task
    sim_to_real_radiograph), so ``translate(image, id)`` and the SemanticSynthesis module can use it.
    """
    from medsynth.generative.datasets.unpaired import UnpairedSpec, build_unpaired_set, list_images
    from medsynth.generative.training import train

    recipe = copy.deepcopy(recipe or load_recipe())
    real = Path(real)
    if not real.is_dir():
        raise InputError(f"{real} is not a folder: give the folder of your real radiographs (DICOM or PNG/JPEG).")
    if len(list_images(real)) < 2:
        raise InputError(f"{real} holds fewer than 2 radiographs; CycleGAN needs some for training and one for "
                         "validation (DICOM or PNG/JPEG files).")
    out = Path(out_dir)
    unpaired = out / "unpaired"
    if not (unpaired / "manifest.json").exists():
        report(progress, 0.0, "simulating radiographs")
        simulated = simulated_radiographs(recipe["simulated"], sub_progress(progress, 0.0, 0.2), cancel)
        build_unpaired_set(simulated, real, unpaired, UnpairedSpec(**recipe["unpaired"]), cancel=cancel)
    config = {"family": "cyclegan", "description": "CycleGAN simulated -> real radiographs (medsynth sim-to-real recipe)",
              "data": {"dataset": str(unpaired)}, "model": recipe["model"], "train": recipe["train"],
              "output": str(out / "run")}
    if resume is None:
        resume = (out / "run" / "last.pt").exists()
    result = train(config, resume=resume, progress=sub_progress(progress, 0.2, 0.98), cancel=cancel)
    summary = {"output": str(result.output), "steps": result.steps, "best": result.best,
               "best_checkpoint": str(result.best_path or result.final_path), "seconds": round(result.total_seconds, 1)}
    if register_as:
        from medsynth.generative.registry import register_checkpoint

        entry = register_checkpoint(result.best_path or result.final_path, register_as, task="sim_to_real_radiograph",
                                    title=f"CycleGAN simulated -> real radiographs ({real.name})")
        summary["registered"] = entry.id
    report(progress, 1.0, "done")
    return summary
