"""2D images for the page: calibrated arrays -> windowed 8-bit PNG data URLs (windows from medsynth.display)."""

from __future__ import annotations

import base64
import io

import numpy as np

from medsynth.display import display_range, to_grey


def png_data_url(image: np.ndarray, window: tuple[float, float] | None = None, invert: bool = False) -> str:
    """A ``data:image/png`` URL of a 2D image shown through ``window`` (default: its percentiles)."""
    from PIL import Image

    low, high = display_range(image) if window is None else window
    buffer = io.BytesIO()
    Image.fromarray(to_grey(np.asarray(image), low, high, invert)).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def drr_pixels(volume) -> np.ndarray:
    """The (rows, columns) pixels of a single-slice DRR Volume (row 0 at the top)."""
    array = np.asarray(volume.array)
    return array.reshape(array.shape[-2:]) if array.ndim == 3 else array
