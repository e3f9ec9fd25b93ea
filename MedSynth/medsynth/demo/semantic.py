"""Demo step: synthetic CT slices from the LIDC label map beside the real ones; DRR -> bone image.

1. ``semantic_ct_slices.png``: four axial levels of LIDC-IDRI-0001, the real CT beside two samples of
   every registered label map -> CT demo model (same anatomy, different seeds), with the label
   outlines; the generated volume slab is saved as NIfTI too.
2. ``semantic_drr_bone.png``: a single-energy DRR of the same CT, the bone image a pix2pix demo model
   predicts from it, and the bone image the DRR engine computes physically (when a single-energy ->
   bone model is registered).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsynth.jobs.progress import ProgressCallback, report, sub_progress

LEVELS = (45, 65, 85, 105)  # axial slice indices of LIDC-IDRI-0001 (lung apex .. liver dome)


def run(out_dir: str | Path, progress: ProgressCallback | None = None) -> list[Path]:
    out_dir = Path(out_dir)
    written = ct_slices(out_dir, sub_progress(progress, 0.0, 0.7))
    written += drr_bone(out_dir, sub_progress(progress, 0.7, 1.0))
    report(progress, 1.0, "done")
    return written


def ct_slices(out_dir: Path, progress: ProgressCallback | None = None) -> list[Path]:
    from medsynth.data import fetch
    from medsynth.generative.inference import generate
    from medsynth.generative.registry import list_models
    from medsynth.generative.slice_grid import to_display_orientation
    from medsynth.io import read_labelmap, read_volume, write_volume
    from medsynth.pictures import WINDOWS, montage, overlay_outlines, save_picture, slice_to_image, window

    folder = fetch("lidc")
    labels = read_labelmap(folder / "labels.nii.gz", folder / "structures.csv")
    ct = read_volume(folder / "ct.nii.gz", modality="CT")
    models = [entry for entry in list_models("labels_to_ct_slice") if not entry.user]
    columns = [("real CT", ct)]
    written = []
    for index, entry in enumerate(models):
        step = sub_progress(progress, index / len(models), (index + 1) / len(models))
        volumes = generate(labels, entry.id, slices=",".join(str(level) for level in LEVELS), samples=2, seed=0,
                           steps=entry.defaults.get("steps"), guidance=entry.defaults.get("guidance"),
                           body=ct.array > -500, progress=step)  # the real body outline, for a fair comparison
        for sample, volume in enumerate(volumes):
            columns.append((f"{entry.id} sample {sample + 1}", _paste(volume, labels)))
        written.append(write_volume(volumes[0], out_dir / f"semantic_{entry.id}_slices.nii.gz"))
    oriented_labels = to_display_orientation(labels)
    tiles, titles = [], []
    for level in LEVELS:
        plane = oriented_labels.array[_display_index(labels, level)]
        masks = [np.isin(plane, group) for group in _groups(labels)]
        for title, volume in columns:
            oriented = to_display_orientation(volume)
            image = window(oriented.array[_display_index(labels, level)], *WINDOWS["soft_tissue"])
            spacing = (float(oriented.spacing[1]), float(oriented.spacing[0]))
            if title == "real CT":
                image = overlay_outlines(image, masks)
            tiles.append(slice_to_image(image, spacing).resize((256, 256)))
            titles.append(f"{title}, slice {level}")
    written.append(save_picture(montage(tiles, titles, columns=len(columns)), out_dir / "semantic_ct_slices.png"))
    return written


def _paste(volume, labels):
    """A generated slab (some slices) on the full label map grid, air elsewhere."""
    from medsynth.volume import Volume

    full = np.full(labels.array.shape, -1024.0, np.float32)
    first = volume.metadata.extra["slices"][0]
    full[first:first + volume.array.shape[0]] = volume.array
    return Volume(full, labels.ijk_to_ras.copy(), volume.metadata)


def _display_index(labels, level: int) -> int:
    from medsynth.generative.slice_grid import to_display_orientation

    oriented = to_display_orientation(labels)
    ras = labels.ijk_to_ras_points(np.array([0.0, 0.0, level]))
    return int(round(float(oriented.ras_to_ijk_points(ras)[2])))


def _groups(labels) -> list[list[int]]:
    """Label values of lung, liver and bone, for outlines on the real slices."""
    from medsynth.generative.class_mapping import group_of

    groups = {"lung": [], "liver": [], "bone": []}
    for value, name in labels.table.names.items():
        group = group_of(name)
        if group in groups:
            groups[group].append(value)
    return list(groups.values())


def drr_bone(out_dir: Path, progress: ProgressCallback | None = None) -> list[Path]:
    """Single-energy DRR -> predicted bone image beside the physically computed bone image."""
    import tempfile

    from medsynth.data import fetch
    from medsynth.generative.datasets.dual_energy import DualEnergySpec, build_dual_energy_pairs
    from medsynth.generative.inference import translate
    from medsynth.generative.metrics import image_metrics
    from medsynth.generative.registry import list_models
    from medsynth.io import read_volume
    from medsynth.pictures import montage, normalize, save_picture, slice_to_image, window
    from medsynth.volume import Volume

    models = [entry for entry in list_models("single_energy_to_bone") if not entry.user]
    if not models:
        report(progress, 1.0, "no single-energy -> bone model registered")
        return []
    entry = models[0]
    ct = read_volume(fetch("lidc") / "ct.nii.gz", modality="CT")
    with tempfile.TemporaryDirectory() as work:
        # poses drawn with a seed the training pairs did not use: held-out views
        spec = DualEnergySpec(poses=2, size=int(entry.input_size[0]), seed=12345, val_fraction=0.5)
        folder = build_dual_energy_pairs(ct, Path(work) / "pairs", spec, progress=sub_progress(progress, 0.0, 0.8))
        data = np.load(folder / "val.npz")
        source, bone, pixel = data["source"][0], data["bone"][0], float(data["pixel_spacing_mm"][0])
    image = Volume.from_spacing(source[None], (pixel, pixel, 1.0))
    predicted = translate(image, entry.id, progress=sub_progress(progress, 0.8, 0.95)).array[0]
    scores = image_metrics(predicted, bone, (0.0, float(np.percentile(bone, 99.9)) * 1.05))
    high = float(np.percentile(bone, 99.5))
    tiles = [slice_to_image(normalize(source), (pixel, pixel)).resize((256, 256)),
             slice_to_image(window(predicted, high / 2, high), (pixel, pixel)).resize((256, 256)),
             slice_to_image(window(bone, high / 2, high), (pixel, pixel)).resize((256, 256))]
    titles = ["single-energy DRR", f"{entry.id}: bone (PSNR {scores['psnr']:.1f} dB)", "physical bone image"]
    return [save_picture(montage(tiles, titles), out_dir / "semantic_drr_bone.png")]
