"""Training and evaluating the tumor detector on healthy CTs with tumors synthesised on the fly.

Every training step paints new tumors into a healthy case (in place, undone right after the
crops are cut), so the network never sees the same tumor twice: Hu et al. found on-the-fly
synthesis beats a fixed pre-generated set. Evaluation paints tumors with seeds the training never
drew into held-out patients and scores each tumor: detected or not, and its Dice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

from medsynth.errors import InputError
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report
from medsynth.tumor.detector import (DetectorRecipe, TumorDetector, build_network, drop_small_pieces, fit_plane,
                                     network_input, orient)
from medsynth.volume import LabelMap, Volume

#: Evaluation seeds start here; training draws its seeds from ``default_rng(recipe.seed)`` instead.
EVALUATION_SEED = 1_000_003
#: A tumor counts as detected when the predicted pieces touching it reach this Dice with it.
DETECTION_DICE = 0.1


@dataclass
class Case:
    """A healthy CT in display orientation, its organ mask and the engine's organ context."""

    name: str
    ct: Volume
    organ: np.ndarray
    context: object  # medsynth.tumor.organ.OrganContext


def known_cases() -> dict[str, tuple]:
    """The fetchable real cases: (CT path, label map path, label table path)."""
    from medsynth.data import fetch

    lidc, totalseg = fetch("lidc"), fetch("totalseg")
    table = lidc / "structures.csv"  # TotalSegmentator v2 ids, the same for its test cases
    return {"lidc": (lidc / "ct.nii.gz", lidc / "labels.nii.gz", table),
            "totalseg_dicom": (totalseg / "dicom", totalseg / "seg_dicom.nii.gz", table),
            "totalseg_small": (totalseg / "ct_sm.nii.gz", totalseg / "seg_sm.nii.gz", table)}


def make_case(name: str, ct: Volume, labels: LabelMap, organ: str) -> Case:
    from medsynth.tumor.detector import organ_mask_from
    from medsynth.tumor.organ import OrganContext

    ct = orient(ct)
    ct = ct.with_array(np.asarray(ct.array, np.float32))
    mask_volume = orient(Volume(organ_mask_from(labels, organ).astype(np.uint8), labels.ijk_to_ras))
    ct.require_same_grid(mask_volume, what=f"label map of {name}")
    mask = mask_volume.array > 0
    return Case(name, ct, mask, OrganContext(ct, mask, organ=organ))


def load_case(name: str, organ: str) -> Case:
    from medsynth.io import read_labelmap, read_volume

    cases = known_cases()
    if name not in cases:
        raise InputError(f"Unknown case {name!r}: choose from {', '.join(cases)}.")
    ct_path, labels_path, table_path = cases[name]
    return make_case(name, read_volume(ct_path, modality="CT"), read_labelmap(labels_path, table_path), organ)


# --- on-the-fly samples -----------------------------------------------------------------------------
def paint_random(case: Case, rng: np.random.Generator, recipe: DetectorRecipe, kinds: Sequence[str] | None = None,
                 density: str | None = None):
    """Paint a few tumors of a random type into the case (in place); returns the engine's result."""
    from medsynth.tumor.engine import synthesize
    from medsynth.tumor.spec import Appearance, TumorSpec

    kind = str(rng.choice(list(kinds or recipe.kinds)))
    if density is None:
        density = "hyper" if rng.random() < recipe.hyper_share else "hypo"
    spec = TumorSpec(kind=kind, count=int(rng.integers(1, 4)), appearance=Appearance(density=density))
    return synthesize(case.ct, None, spec, rng, context=case.context, in_place=True, output_labels="none")


def _slice_label(result, k: int, shape: tuple[int, int]) -> np.ndarray:
    label = np.zeros(shape, bool)
    for patch in result.patches:
        box = patch.box_global
        if box[0].start <= k < box[0].stop:
            label[box[1], box[2]] |= patch.label[k - box[0].start]
    return label


def sample_crops(case: Case, result, rng: np.random.Generator, recipe: DetectorRecipe, count: int):
    """``count`` crops (CT, organ, tumor) of ``recipe.crop`` pixels at the recipe's pixel spacing."""
    tumor_slices = sorted({patch.box_global[0].start + k for patch in result.patches
                           for k in np.flatnonzero(patch.label.any(axis=(1, 2)))})
    organ_slices = np.flatnonzero(case.organ.any(axis=(1, 2)))
    spacing = case.ct.spacing
    crops = []
    for _ in range(count):
        through_tumor = tumor_slices and rng.random() < recipe.tumor_slice_share
        k = int(rng.choice(tumor_slices if through_tumor else organ_slices))
        tumor = _slice_label(result, k, case.organ.shape[1:])
        target = tumor if through_tumor and tumor.any() else case.organ[k]
        rows, cols = np.nonzero(target)
        pick = rng.integers(len(rows))
        pixel = recipe.pixel_spacing_mm * rng.uniform(0.85, 1.2)  # scale jitter
        half_rows = recipe.crop * pixel / spacing[1] / 2
        half_cols = recipe.crop * pixel / spacing[0] / 2
        centre = (rows[pick] + rng.uniform(-0.35, 0.35) * half_rows, cols[pick] + rng.uniform(-0.35, 0.35) * half_cols)
        coords = np.meshgrid(centre[0] + (np.arange(recipe.crop) - recipe.crop / 2 + 0.5) * pixel / spacing[1],
                             centre[1] + (np.arange(recipe.crop) - recipe.crop / 2 + 0.5) * pixel / spacing[0],
                             indexing="ij")
        image = ndimage.map_coordinates(np.asarray(case.ct.array[k], np.float32), coords, order=1, mode="nearest")
        organ = ndimage.map_coordinates(case.organ[k].astype(np.float32), coords, order=1, mode="constant") > 0.5
        label = ndimage.map_coordinates(tumor.astype(np.float32), coords, order=1, mode="constant") > 0.5
        crops.append((image, organ, label & organ))
    return crops


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scanner-like variation: other contrast phases (the whole crop's HU shifted and stretched around 60 HU),
    coarser scans (down- and up-sampled, 2-3.5 mm pixels), blur and extra noise.

    The training scans are contrast-enhanced; the shift and stretch keep a non-contrast liver (about 50 HU,
    darker vessels) from looking like one large tumor to the network.
    """
    if rng.random() < 0.8:
        image = (image - 60.0) * rng.uniform(0.7, 1.3) + 60.0 + rng.uniform(-50.0, 25.0)
    chance = rng.random()
    if chance < 0.35:
        factor = rng.uniform(1.4, 2.3)
        small = ndimage.zoom(image, 1.0 / factor, order=1)
        back = ndimage.zoom(small, (image.shape[0] / small.shape[0], image.shape[1] / small.shape[1]), order=1)
        image = fit_plane(back, image.shape)
    elif chance < 0.6:
        image = ndimage.gaussian_filter(image, rng.uniform(0.3, 1.2))
    if rng.random() < 0.5:
        image = image + rng.normal(0.0, rng.uniform(3.0, 15.0), image.shape).astype(np.float32)
    return image


def training_batch(cases: Sequence[Case], rng: np.random.Generator, recipe: DetectorRecipe):
    """One batch: tumors painted into a random case, crops cut, the case restored."""
    case = cases[int(rng.integers(len(cases)))]
    result = paint_random(case, rng, recipe)
    try:
        crops = sample_crops(case, result, rng, recipe, recipe.batch)
    finally:
        result.undo(case.ct.array)
    images, organs, labels = [], [], []
    for image, organ, label in crops:
        if rng.random() < 0.5:
            image, organ, label = image[:, ::-1], organ[:, ::-1], label[:, ::-1]
        images.append(augment(image, rng))
        organs.append(organ)
        labels.append(label)
    x = network_input(np.stack(images), np.stack(organs), recipe.window)
    return x, np.stack(labels).astype(np.int64)[:, None], len(result.tumors)


def train_detector(recipe: DetectorRecipe, cases: Sequence[Case] | None = None, device: str = "cpu",
                   progress: ProgressCallback | None = None, cancel: CancelToken | None = None):
    """Train a detector (Dice + cross-entropy, Adam, cosine schedule); returns (detector, log)."""
    import torch
    from monai.losses import DiceCELoss

    from medsynth.generative.device import resolve_device

    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    cases = list(cases) if cases is not None else [load_case(name, recipe.organ) for name in recipe.train_cases]
    target = resolve_device(device)
    network = build_network(recipe).to(target).train()
    optimiser = torch.optim.Adam(network.parameters(), lr=recipe.learning_rate)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(1, recipe.steps))
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
    losses, tumors, synthesis_seconds = [], 0, 0.0
    started = time.perf_counter()
    steps_done = 0
    for step in range(recipe.steps):
        check_cancel(cancel)
        if time.perf_counter() - started > 60.0 * recipe.time_limit_minutes:
            break
        tick = time.perf_counter()
        x, y, made = training_batch(cases, rng, recipe)
        synthesis_seconds += time.perf_counter() - tick
        tumors += made
        optimiser.zero_grad()
        loss = loss_function(network(torch.from_numpy(x).to(target)), torch.from_numpy(y).to(target))
        loss.backward()
        optimiser.step()
        scheduler.step()
        losses.append(float(loss.item()))
        steps_done = step + 1
        report(progress, steps_done / recipe.steps, f"step {steps_done}: loss {losses[-1]:.3f}")
    log = {"losses": losses, "seconds": time.perf_counter() - started, "synthesis_seconds": synthesis_seconds,
           "tumors_synthesised": tumors, "device": str(target), "steps_done": steps_done}
    return TumorDetector(network.cpu(), recipe), log


# --- evaluation -------------------------------------------------------------------------------------
def per_tumor_scores(prediction: np.ndarray, result) -> list[dict]:
    """For each painted tumor: diameter, Dice of the predicted pieces touching it, detected or not."""
    truth = np.zeros(prediction.shape, np.int32)
    for number, patch in enumerate(result.patches, start=1):
        truth[patch.box_global][patch.label] = number
    pieces, _count = ndimage.label(prediction)
    scores = []
    for number, tumor in enumerate(result.tumors, start=1):
        mine = truth == number
        touching = np.unique(pieces[mine])
        touching = touching[touching > 0]
        predicted = np.isin(pieces, touching) & ((truth == 0) | mine)
        overlap = np.count_nonzero(predicted & mine)
        dice = 2.0 * overlap / (np.count_nonzero(predicted) + np.count_nonzero(mine))
        scores.append({"diameter_mm": tumor.equivalent_diameter_mm, "kind": tumor.kind, "dice": round(dice, 4),
                       "detected": bool(dice >= DETECTION_DICE)})
    false_pieces = np.setdiff1d(np.unique(pieces[(truth == 0) & prediction]), np.unique(pieces[truth > 0]))
    return scores + [{"false_positive_pieces": int(false_pieces.size)}]


def evaluate_detector(detector: TumorDetector, cases: Sequence[Case], repeats: int = 12,
                      kinds: Sequence[str] = ("small", "medium", "large"),
                      cancel: CancelToken | None = None) -> dict:
    """Detection rate and Dice per tumor on held-out cases with unseen synthetic (hypodense) tumors."""
    tumors, false_positives, volumes = [], 0, 0
    for case in cases:
        for repeat in range(repeats):
            check_cancel(cancel)
            rng = np.random.default_rng([EVALUATION_SEED, repeat, len(case.name)])
            result = paint_random(case, rng, detector.recipe, kinds=[kinds[repeat % len(kinds)]], density="hypo")
            try:
                probability = detector.probability_volume(case.ct, case.organ)
                prediction = drop_small_pieces((probability >= 0.5) & case.organ, case.ct.spacing,
                                               detector.recipe.min_component_mm3)
                scores = per_tumor_scores(prediction, result)
            finally:
                result.undo(case.ct.array)
            false_positives += scores[-1]["false_positive_pieces"]
            volumes += 1
            tumors += [dict(score, case=case.name) for score in scores[:-1]]
    return summarise(tumors, false_positives, volumes)


def summarise(tumors: list[dict], false_positives: int, volumes: int) -> dict:
    def block(rows):
        if not rows:
            return {"tumors": 0}
        return {"tumors": len(rows), "detection_rate": round(float(np.mean([r["detected"] for r in rows])), 3),
                "dice_mean": round(float(np.mean([r["dice"] for r in rows])), 3),
                "dice_of_detected": round(float(np.mean([r["dice"] for r in rows if r["detected"]] or [0.0])), 3)}

    return {"over_10mm": block([t for t in tumors if t["diameter_mm"] > 10.0]), "all": block(tumors),
            "false_positive_pieces_per_case": round(false_positives / max(volumes, 1), 2), "volumes": volumes,
            "per_tumor": tumors}


def train_and_record(recipe: DetectorRecipe, out_path, device: str = "cpu", command: str = "",
                     progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
                     evaluate: bool = True) -> dict:
    """Train, save the weights, evaluate on the held-out cases and write the JSON record next to them."""
    from medsynth.tumor.detector import save_detector

    detector, log = train_detector(recipe, device=device, progress=progress, cancel=cancel)
    save_detector(detector.network, recipe, out_path)
    return write_record(out_path, log, command, evaluate, cancel)


def write_record(out_path, log: dict, command: str = "", evaluate: bool = True,
                 cancel: CancelToken | None = None) -> dict:
    """Evaluate a saved detector on its held-out cases and write its record (recipe, SHA-256, time, metrics)."""
    import json
    from pathlib import Path

    from medsynth.generative.checkpoint import sha256_of
    from medsynth.io.atomic import atomic_output
    from medsynth.tumor.detector import load_detector

    out_path = Path(out_path)
    detector = load_detector(out_path)
    recipe = detector.recipe
    started = time.perf_counter()
    metrics = None
    if evaluate:
        heldout = [load_case(name, recipe.organ) for name in recipe.heldout_cases]
        metrics = evaluate_detector(detector, heldout, cancel=cancel)
    record = {
        "file": out_path.name, "sha256": sha256_of(out_path), "bytes": out_path.stat().st_size,
        "recipe": recipe.to_dict(), "command": command, "device": log["device"],
        "training_seconds": round(log["seconds"], 1), "steps_done": log["steps_done"],
        "synthesis_seconds": round(log["synthesis_seconds"], 1), "tumors_synthesised": log["tumors_synthesised"],
        "first_loss": round(float(np.mean(log["losses"][:20])), 4),
        "final_loss": round(float(np.mean(log["losses"][-20:])), 4),
        "evaluation_seconds": round(time.perf_counter() - started, 1),
        "heldout_metrics": metrics,
        "caveat": "Measured on held-out patients with synthetic tumors the network never saw (other seeds); "
                  "no real-tumor scan can be fetched here, so real-tumor performance is not measured.",
        "licence": "Apache-2.0 (weights trained by MedSynth on LIDC-IDRI CC BY 3.0 and TotalSegmentator test "
                   "scans Apache-2.0)",
    }
    with atomic_output(out_path.with_suffix(".json")) as temp:
        temp.write_text(json.dumps(record, indent=2) + "\n")
    return record
