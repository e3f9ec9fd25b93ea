"""The picture saved beside a generated volume: what a user looks at first."""

from __future__ import annotations

from pathlib import Path

import numpy as np


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
