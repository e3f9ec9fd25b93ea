"""Pictures people would rather look at than numbers: windowed slices, outlines, montages.

Slices are shown the radiological way: axial with the patient's right on the image left and
anterior up; coronal with superior up; sagittal with anterior on the left.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from medsynth.display import CT_WINDOWS, display_range, level_width_range, to_grey
from medsynth.io.atomic import atomic_output
from medsynth.volume import Volume, display_oriented

#: CT windows as (level, width) in HU.
WINDOWS = CT_WINDOWS

#: Distinct outline colours (RGB).
COLORS = [(255, 80, 80), (80, 220, 80), (80, 160, 255), (255, 210, 60), (220, 90, 255), (60, 230, 230)]


def window(array: np.ndarray, level: float, width: float) -> np.ndarray:
    """Map intensities through a display window to uint8."""
    return to_grey(array, *level_width_range(level, width))


def normalize(array: np.ndarray, low_percentile: float = 0.5, high_percentile: float = 99.5) -> np.ndarray:
    """Map an image of any range to uint8 by percentiles (for display only, never for data)."""
    array = np.asarray(array, dtype=np.float32)
    if not np.isfinite(array).any():
        return np.zeros(array.shape, np.uint8)
    return to_grey(array, *display_range(array, (low_percentile, high_percentile)))


def orthogonal_slices(volume: Volume, point_ras: Sequence[float] | None = None) -> dict[str, tuple[np.ndarray, tuple[float, float]]]:
    """Axial, coronal and sagittal slices through a RAS point (default: the centre).

    Returns name -> (2D array, (row spacing, column spacing) in mm).
    """
    oriented = display_oriented(volume, resample_oblique=True)
    point = oriented.center_ras if point_ras is None else np.asarray(point_ras, float)
    i, j, k = np.clip(np.rint(oriented.ras_to_ijk_points(point)).astype(int), 0, np.array(oriented.shape_ijk) - 1)
    si, sj, sk = oriented.spacing
    array = oriented.array
    return {
        "axial": (array[k], (sj, si)),
        "coronal": (array[::-1, j, :], (sk, si)),
        "sagittal": (array[::-1, :, i], (sk, sj)),
    }


def slice_to_image(pixels: np.ndarray, spacing: tuple[float, float], mm_per_pixel: float | None = None) -> Image.Image:
    """A uint8 or RGB slice as a PIL image with square pixels (resized by the physical spacing)."""
    mm = mm_per_pixel or min(spacing)
    height = max(1, int(round(pixels.shape[0] * spacing[0] / mm)))
    width = max(1, int(round(pixels.shape[1] * spacing[1] / mm)))
    mode = "RGB" if pixels.ndim == 3 else "L"
    return Image.fromarray(np.ascontiguousarray(pixels), mode).resize((width, height), Image.NEAREST)


def outline(mask: np.ndarray) -> np.ndarray:
    """The one-pixel boundary of a 2D mask."""
    mask = mask.astype(bool)
    return mask & ~ndimage.binary_erosion(mask)


def overlay_outlines(gray: np.ndarray, masks: Sequence[np.ndarray], colors: Sequence[tuple] = COLORS) -> np.ndarray:
    """An RGB image of ``gray`` (uint8) with each mask's outline drawn in its colour."""
    rgb = np.repeat(gray[..., None], 3, axis=2)
    for index, mask in enumerate(masks):
        rgb[outline(mask)] = colors[index % len(colors)]
    return rgb


def montage(images: Sequence[Image.Image], titles: Sequence[str] | None = None, columns: int | None = None,
            background: int = 0) -> Image.Image:
    """Tile images in a grid with optional titles above each."""
    columns = columns or len(images)
    rows = (len(images) + columns - 1) // columns
    title_height = 14 if titles else 0
    cell_w = max(im.width for im in images)
    cell_h = max(im.height for im in images) + title_height
    sheet = Image.new("RGB", (cell_w * columns, cell_h * rows), (background,) * 3)
    draw = ImageDraw.Draw(sheet)
    for index, image in enumerate(images):
        x, y = (index % columns) * cell_w, (index // columns) * cell_h
        sheet.paste(image.convert("RGB"), (x, y + title_height))
        if titles:
            draw.text((x + 3, y + 1), titles[index], fill=(255, 255, 255))
    return sheet


def save_picture(image: Image.Image, path: str | Path) -> Path:
    """Save a PNG atomically."""
    path = Path(path)
    with atomic_output(path) as temp:
        image.save(temp, format="PNG")
    return path
