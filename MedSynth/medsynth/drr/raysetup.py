"""Per-pose ray set-up shared by the CPU and CUDA kernels: everything in voxel coordinates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medsynth.geometry import CArm


@dataclass
class RaySetup:
    source: np.ndarray  # (3,) source in continuous (i, j, k)
    origin: np.ndarray  # (3,) detector pixel (0, 0) in (i, j, k)
    outer: np.ndarray  # (3,) step between consecutive outer-loop pixels
    inner: np.ndarray  # (3,) step between consecutive inner-loop pixels
    n_outer: int
    n_inner: int
    transposed: bool  # True: outer = columns, inner = rows
    metric: np.ndarray  # (3, 3) A^T A of the IJK->RAS linear part
    along_rows: bool = False  # some rays run mostly along I (the kernel then wants the J-fastest copy)


def ray_setup(ijk_to_ras: np.ndarray, carm: CArm) -> RaySetup:
    """Map a pose into voxel space and choose the loop order that follows the volume's memory.

    The inner loop runs along the detector axis whose voxel-space direction has the largest share
    along I (the fastest axis in memory), so consecutive rays read neighbouring cache lines.
    """
    ras_to_ijk = np.linalg.inv(ijk_to_ras)
    linear = ras_to_ijk[:3, :3]
    source = ras_to_ijk[:3, :3] @ carm.source_position() + ras_to_ijk[:3, 3]
    origin_ras = carm.pixel_to_ras(0.0, 0.0)
    origin = linear @ origin_ras + ras_to_ijk[:3, 3]
    rotation = carm.rotation()
    row_spacing, col_spacing = carm.spacing_rc
    along_cols = linear @ (rotation[:, 0] * col_spacing)
    along_rows = linear @ (rotation[:, 1] * row_spacing)

    def share_i(v: np.ndarray) -> float:
        return abs(v[0]) / (np.linalg.norm(v) + 1e-30) + 1e-3 * abs(v[1]) / (np.linalg.norm(v) + 1e-30)

    transposed = share_i(along_rows) > share_i(along_cols)
    if transposed:
        outer, inner, n_outer, n_inner = along_cols, along_rows, carm.detector_columns, carm.detector_rows
    else:
        outer, inner, n_outer, n_inner = along_rows, along_cols, carm.detector_rows, carm.detector_columns
    a = ijk_to_ras[:3, :3]
    probes = [origin + o * outer + q * inner - source for o in (0, n_outer - 1, (n_outer - 1) / 2)
               for q in (0, n_inner - 1, (n_inner - 1) / 2)]
    along_rows = any(abs(d[0]) >= abs(d[1]) and abs(d[0]) >= abs(d[2]) for d in probes)
    return RaySetup(source, origin, outer, inner, int(n_outer), int(n_inner), bool(transposed), a.T @ a, along_rows)
