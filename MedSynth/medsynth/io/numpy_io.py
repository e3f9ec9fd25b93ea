"""NumPy volumes (.npy/.npz), as some public datasets (RadChest-CT) ship them: no geometry inside."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsynth.errors import InputError
from medsynth.volume import Volume, VolumeMetadata


def read_numpy(
    path: str | Path,
    spacing: tuple[float, float, float],
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    axis_order: str = "kji",
    key: str | None = None,
    modality: str | None = None,
) -> Volume:
    """Read a 3D array with explicitly given spacing (i, j, k in mm) and RAS origin.

    ``axis_order`` says how the stored axes map to Slicer's (k, j, i): "kji" (slices first, the
    usual layout) or "ijk". ``key`` picks an array from an .npz holding several.
    """
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise InputError(f"{path.name} is not a readable NumPy file: {error}") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        keys = list(loaded.keys())
        if key is None and len(keys) != 1:
            raise InputError(f"{path.name} holds several arrays ({', '.join(keys)}): name one with key=.")
        array = loaded[key or keys[0]]
    else:
        array = loaded
    if array.ndim != 3:
        raise InputError(f"{path.name} holds a {array.ndim}D array; a volume needs 3D.")
    if axis_order == "ijk":
        array = np.ascontiguousarray(array.transpose(2, 1, 0))
    elif axis_order != "kji":
        raise InputError("axis_order must be 'kji' or 'ijk'.")
    if len(tuple(spacing)) != 3 or min(spacing) <= 0:
        raise InputError(f"Spacing must be three positive numbers in mm, got {spacing}.")
    units = "HU" if (modality or "").upper() == "CT" else None
    return Volume.from_spacing(
        array, spacing, origin, metadata=VolumeMetadata(modality=modality, units=units, source=str(path))
    )
