"""Small real cases for the dataset tests: LIDC-IDRI-0001 and its label map, sampled 4 x 4 x 2.

Every fourth voxel in-plane and every second slice (nearest neighbour, geometry kept exact) gives
a 128 x 128 x 67 CT at 2.8 x 2.8 x 5 mm: the real anatomy, projected in milliseconds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np


def write_small_lidc(lidc_dir: Path, folder: Path) -> Path:
    from medsynth.io import read_labelmap, read_volume, write_volume
    from medsynth.volume import LabelMap, Volume

    folder.mkdir(parents=True, exist_ok=True)
    ct = read_volume(lidc_dir / "ct.nii.gz", modality="CT")
    labels = read_labelmap(lidc_dir / "labels.nii.gz", lidc_dir / "structures.csv")
    matrix = ct.ijk_to_ras.copy()
    matrix[:3, :3] = matrix[:3, :3] @ np.diag([4.0, 4.0, 2.0])
    write_volume(Volume(np.ascontiguousarray(ct.array[::2, ::4, ::4]), matrix, ct.metadata), folder / "ct.nii.gz")
    write_volume(LabelMap(np.ascontiguousarray(labels.array[::2, ::4, ::4]), matrix, labels.metadata, labels.table),
                 folder / "labels.nii.gz")
    shutil.copy(lidc_dir / "structures.csv", folder / "structures.csv")
    return folder


RECIPE = """\
seed: 3
cases:
  - {name: lidc, ct: ct.nii.gz, labels: labels.nii.gz, table: structures.csv}
tumor:
  variants: 1
  keep_original: true
  parameters: {tumor_type: medium, count: 2}
drr:
  views: VIEWS
  detector_pixels: 48
  primary: [-30, 30]
  secondary: [-10, 10]
  isocenter_jitter_mm: 5
  parameters: {add_noise: true, photons: 5000}
labels:
  structures: {tumor: tumor, liver: liver, bones: ["vertebrae_*", "rib_*", "sternum"]}
output:
  contact_sheet: 4
"""


def write_recipe(folder: Path, views: int = 3, extra: str = "") -> Path:
    path = folder / f"recipe_{views}.yaml"
    path.write_text(RECIPE.replace("VIEWS", str(views)) + extra)
    return path
