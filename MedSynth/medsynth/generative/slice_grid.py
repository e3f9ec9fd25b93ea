"""Move 2D slices between a volume's own grid and a model's fixed pixel grid, and back.

Models work on square images of a fixed size and pixel spacing, shown the radiological way
(row 0 anterior, column 0 the patient's right). A volume is first permuted/flipped (no
resampling) into that display orientation; each axial slice is then resampled onto the model's
grid, centred on a fixed point of the slice plane (the same for every slice, so neighbouring
slices stay aligned), and results are resampled back exactly onto the slice's own pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from medsynth.errors import GeometryError
from medsynth.volume import Volume
from medsynth.volume import display_oriented as to_display_orientation  # noqa: F401 - the one helper, by its old name


@dataclass(frozen=True)
class SliceGrid:
    """The mapping between a slice's pixels (rows, columns) and a model's square pixel grid."""

    slice_shape: tuple[int, int]  # rows, columns of the volume's slice
    slice_spacing: tuple[float, float]  # mm per row step, per column step
    model_size: tuple[int, int]  # rows, columns of the model's image
    model_spacing: tuple[float, float]  # mm per model pixel (rows, columns)
    centre: tuple[float, float]  # slice pixel (row, column) at the model image's centre

    @classmethod
    def centred(cls, slice_shape, slice_spacing, model_size, model_spacing, centre=None) -> "SliceGrid":
        """A grid centred on the slice's centre (or on ``centre`` in slice pixels)."""
        if centre is None:
            centre = ((slice_shape[0] - 1) / 2.0, (slice_shape[1] - 1) / 2.0)
        return cls(tuple(int(v) for v in slice_shape), tuple(float(v) for v in slice_spacing),
                   tuple(int(v) for v in model_size), tuple(float(v) for v in model_spacing),
                   (float(centre[0]), float(centre[1])))

    def _model_to_slice(self) -> tuple[np.ndarray, np.ndarray]:
        """Scale and offset so slice_pixel = scale * model_pixel + offset (per axis)."""
        scale = np.array(self.model_spacing) / np.array(self.slice_spacing)
        offset = np.array(self.centre) - scale * (np.array(self.model_size) - 1) / 2.0
        return scale, offset

    def coverage(self) -> float:
        """Fraction of the slice's field of view that the model image covers (1.0: all of it)."""
        scale, offset = self._model_to_slice()
        low = np.maximum(offset, -0.5)
        high = np.minimum(offset + scale * (np.array(self.model_size) - 1), np.array(self.slice_shape) - 0.5)
        covered = np.prod(np.clip(high - low, 0, None))
        return float(covered / np.prod(self.slice_shape))

    def to_model(self, slices: np.ndarray, order: int, fill: float) -> np.ndarray:
        """Resample [N, rows, cols] slices onto the model grid (order 0 for labels, 1 for images)."""
        scale, offset = self._model_to_slice()
        slices = np.asarray(slices)
        output = np.empty((slices.shape[0], *self.model_size), dtype=np.float32 if order else slices.dtype)
        for index, image in enumerate(slices):
            output[index] = ndimage.affine_transform(
                image, scale, offset, output_shape=self.model_size, order=order, mode="constant", cval=fill,
                prefilter=False)
        return output

    def from_model(self, images: np.ndarray, order: int, fill: float) -> np.ndarray:
        """Resample [N, H, W] model images back onto the slices' own pixels."""
        scale, offset = self._model_to_slice()
        inverse_scale = 1.0 / scale
        inverse_offset = -offset / scale
        images = np.asarray(images)
        output = np.empty((images.shape[0], *self.slice_shape), dtype=np.float32 if order else images.dtype)
        for index, image in enumerate(images):
            output[index] = ndimage.affine_transform(
                image, inverse_scale, inverse_offset, output_shape=self.slice_shape, order=order,
                mode="constant", cval=fill, prefilter=False)
        return output


def grid_for_volume(labels: np.ndarray, spacing_rc: tuple[float, float], model_size, model_spacing) -> SliceGrid:
    """One grid for all slices of a [K, rows, cols] label array.

    Centred on the slice centre when the model's field of view covers the slice; otherwise on
    the centre of the labelled region (the same for every slice), and an error when even the
    labelled region does not fit.
    """
    grid = SliceGrid.centred(labels.shape[1:], spacing_rc, model_size, model_spacing)
    if grid.coverage() >= 0.999:
        return grid
    foreground = np.argwhere(np.any(labels > 0, axis=0))
    if foreground.size == 0:
        return grid
    low, high = foreground.min(axis=0), foreground.max(axis=0)
    extent_mm = (high - low + 1) * np.array(spacing_rc)
    fov_mm = np.array(model_size) * np.array(model_spacing)
    if np.any(extent_mm > fov_mm + 1e-6):
        raise GeometryError(
            f"The labelled region spans {np.round(extent_mm).tolist()} mm in the slice plane but the model sees "
            f"only {np.round(fov_mm).tolist()} mm ({list(model_size)} pixels of {list(model_spacing)} mm). "
            "Crop the label map to the body or use a model trained with a larger field of view."
        )
    return SliceGrid.centred(labels.shape[1:], spacing_rc, model_size, model_spacing, centre=(low + high) / 2.0)
