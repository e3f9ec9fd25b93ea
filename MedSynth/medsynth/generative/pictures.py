"""Pictures of generative work: the one saved beside a generated volume, label maps, sample grids and
training curves (what a user looks at first)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsynth.generative.intensity import IntensityWindow
from medsynth.io.atomic import atomic_output

#: Colours of classes 1.. in label pictures (class 0 is black).
PALETTE = np.array([[0, 0, 0], [170, 110, 90], [80, 160, 255], [150, 70, 40], [240, 240, 200], [220, 40, 60],
                    [90, 220, 90], [255, 210, 60], [200, 90, 255], [60, 230, 230]], np.uint8)


def save_generated_picture(volume, labels, path: Path) -> Path:
    """Generated axial slice (soft-tissue window) beside the label outlines on it, at the middle slice."""
    from medsynth.generative.slice_grid import to_display_orientation
    from medsynth.pictures import WINDOWS, montage, overlay_outlines, save_picture, slice_to_image, window

    oriented = to_display_orientation(volume)
    index = oriented.array.shape[0] // 2
    image = window(oriented.array[index], *WINDOWS["soft_tissue"])
    spacing = (float(oriented.spacing[1]), float(oriented.spacing[0]))
    centre = oriented.ijk_to_ras_points(np.array([0, 0, index]))
    oriented_labels = to_display_orientation(labels)
    k = int(np.clip(round(float(oriented_labels.ras_to_ijk_points(centre)[2])), 0, oriented_labels.array.shape[0] - 1))
    plane = oriented_labels.array[k]
    masks = [plane == value for value in np.unique(plane) if value != 0][:12]
    tiles = [slice_to_image(image, spacing), slice_to_image(window(oriented.array[index], *WINDOWS["lung"]), spacing)]
    if plane.shape == image.shape:
        tiles.append(slice_to_image(overlay_outlines(image, masks), spacing))
    return save_picture(montage(tiles, ["generated (soft tissue)", "generated (lung)", "label outlines"][:len(tiles)]), path)


def label_picture(labels: np.ndarray) -> np.ndarray:
    return PALETTE[np.asarray(labels) % len(PALETTE)]


def unit_to_uint8(image, window: IntensityWindow) -> np.ndarray:
    """[-1, 1] -> uint8 for display: a soft-tissue window for HU, the full range otherwise."""
    from medsynth.pictures import window as display_window

    array = np.asarray(image, dtype=np.float32)
    if window.units == "HU":
        return display_window(window.from_unit(array), 40.0, 400.0)
    return ((array.clip(-1, 1) + 1) * 127.5 + 0.5).astype(np.uint8)


def save_rows(rows: list[list[np.ndarray]], titles: list[str], path: Path, scale: int = 2) -> Path:
    """Save a grid (rows of uint8/RGB arrays, one title per column) as a PNG."""
    from PIL import Image

    from medsynth.pictures import montage, save_picture

    tiles, names = [], []
    for row in rows:
        for column, array in enumerate(row):
            image = Image.fromarray(np.ascontiguousarray(array), "RGB" if array.ndim == 3 else "L")
            tiles.append(image.resize((image.width * scale, image.height * scale), Image.NEAREST))
            names.append(titles[column])
    return save_picture(montage(tiles, names, columns=len(titles)), path)


def plot_curves(history: list[dict], path: Path, val_metric: str) -> Path | None:
    """curves.png: training losses and validation metrics against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train_rows = [row for row in history if row.get("kind") == "train"]
    val_rows = [row for row in history if row.get("kind") == "val"]
    if not train_rows:
        return None
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    loss_names = sorted({k for row in train_rows for k in row if k.startswith("loss")})
    for name in loss_names:
        axes[0].plot([r["step"] for r in train_rows if name in r], [r[name] for r in train_rows if name in r], label=name)
    axes[0].set_xlabel("step")
    axes[0].set_title("training losses")
    axes[0].legend(fontsize=8)
    metric_names = sorted({k for row in val_rows for k in row if k not in ("step", "kind", "time_s")})
    for name in metric_names:
        values = [(r["step"], r[name]) for r in val_rows if name in r and r[name] is not None and np.isfinite(r[name])]
        if values:
            axes[1].plot(*zip(*values), marker="o", label=name + (" (best by)" if name == val_metric else ""))
    axes[1].set_xlabel("step")
    axes[1].set_title("validation")
    axes[1].set_yscale("symlog")
    if metric_names:
        axes[1].legend(fontsize=8)
    figure.tight_layout()
    with atomic_output(path) as temp:
        figure.savefig(temp, format="png", dpi=90)
    plt.close(figure)
    return path
