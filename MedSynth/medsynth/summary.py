"""A human-readable summary of a CT and its label map: size, spacing, orientation, HU, organs."""

from __future__ import annotations

import numpy as np

from medsynth.volume import LabelMap, Volume

_AXIS_CODES = ("L", "R", "P", "A", "I", "S")  # negative/positive RAS direction letters


def orientation_code(volume: Volume) -> str:
    """Three letters naming where +I, +J, +K point (e.g. 'LPS' for a usual DICOM axial CT)."""
    letters = []
    for column in volume.directions.T:
        axis = int(np.argmax(np.abs(column)))
        letters.append(_AXIS_CODES[2 * axis + (1 if column[axis] > 0 else 0)])
    return "".join(letters)


def describe(ct: Volume, labels: LabelMap | None = None, top_organs: int = 12) -> dict:
    """Facts a user checks first when loading a scan."""
    array = ct.array
    info = {
        "size_ijk": list(ct.shape_ijk),
        "spacing_mm": [round(float(s), 4) for s in ct.spacing],
        "extent_mm": [round(float(n * s), 1) for n, s in zip(ct.shape_ijk, ct.spacing)],
        "orientation": orientation_code(ct),
        "oblique": bool(np.any(np.max(np.abs(ct.directions), axis=0) < 0.999)),
        "modality": ct.metadata.modality,
        "value_range": [float(array.min()), float(array.max())],
        "percentiles_1_50_99": [float(v) for v in np.percentile(array[:: 4, :: 4, :: 4], [1, 50, 99])],
        "memory_mb": round(array.nbytes / 2**20, 1),
    }
    if labels is not None:
        values, counts = np.unique(labels.array, return_counts=True)
        voxel_ml = float(np.prod(labels.spacing)) / 1000.0
        organs = sorted(
            ((labels.table.name(v), c * voxel_ml, float(array[labels.array == v].mean()))
             for v, c in zip(values, counts) if v != 0),
            key=lambda item: -item[1],
        )
        info["organs"] = [
            {"name": name, "volume_ml": round(volume, 1), "mean_hu": round(mean, 1)}
            for name, volume, mean in organs[:top_organs]
        ]
        info["organ_count"] = len(organs)
    return info


def format_summary(info: dict) -> str:
    lines = [
        f"size (i,j,k): {info['size_ijk']}  spacing: {info['spacing_mm']} mm  extent: {info['extent_mm']} mm",
        f"orientation: {info['orientation']}{' (oblique)' if info['oblique'] else ''}  modality: {info['modality']}",
        f"values: {info['value_range'][0]:.0f}..{info['value_range'][1]:.0f}  "
        f"(1/50/99 %: {', '.join(f'{v:.0f}' for v in info['percentiles_1_50_99'])})  memory: {info['memory_mb']} MB",
    ]
    if "organs" in info:
        lines.append(f"{info['organ_count']} labelled structures; largest:")
        lines += [f"  {o['name']:28s} {o['volume_ml']:9.1f} ml  mean {o['mean_hu']:7.1f} HU" for o in info["organs"]]
    return "\n".join(lines)
