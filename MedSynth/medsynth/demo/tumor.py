"""Demo step: paint liver tumors into LIDC-IDRI-0001, one where a user would click and a random mix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from medsynth.data import fetch
from medsynth.io import read_labelmap, read_volume
from medsynth.jobs.progress import ProgressCallback, report
from medsynth.pictures import save_picture
from medsynth.tumor import TumorSpec, synthesize
from medsynth.tumor.outputs import tumor_picture

LIVER = 5


def run(out_dir: Path, progress: ProgressCallback | None = None) -> list[Path]:
    report(progress, 0.0, "reading LIDC-IDRI-0001 and its liver")
    lidc = fetch("lidc")
    ct = read_volume(lidc / "ct.nii.gz", modality="CT")
    labels = read_labelmap(lidc / "labels.nii.gz", lidc / "structures.csv")
    liver = labels.mask(LIVER)
    # "the user clicks" deep inside the liver: its point farthest from the liver surface
    depth = ndimage.distance_transform_edt(liver, sampling=ct.spacing[::-1])
    k, j, i = np.unravel_index(int(np.argmax(depth)), depth.shape)
    click = ct.ijk_to_ras_points([i, j, k])
    written = []
    report(progress, 0.3, "a clicked medium tumor")
    clicked = synthesize(ct, labels, TumorSpec(kind="medium"), rng=7, point_ras=click, liver_label=LIVER)
    written.append(save_picture(tumor_picture(clicked.ct, clicked.labels, clicked.tumors),
                                Path(out_dir) / "tumor_clicked_medium.png"))
    report(progress, 0.6, "a random 'mix' case")
    mix = synthesize(ct, labels, TumorSpec(kind="mix"), rng=11, liver_label=LIVER)
    written.append(save_picture(tumor_picture(mix.ct, mix.labels, mix.tumors, max_tumors=16),
                                Path(out_dir) / "tumor_mix.png"))
    for result, name in ((clicked, "clicked medium"), (mix, "mix")):
        sizes = ", ".join(f"{t.equivalent_diameter_mm:.0f}" for t in result.tumors)
        contrast = np.mean([t.mean_hu_change for t in result.tumors])
        print(f"{name}: {len(result.tumors)} tumor(s), diameters {sizes} mm, mean HU change {contrast:.0f}")
    report(progress, 1.0, "done")
    return written
