"""Demo step: load LIDC-IDRI-0001 from DICOM, summarise it, picture it with the liver outlined."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsynth.data import fetch
from medsynth.io import read_dicom_series, read_labelmap, resample_like
from medsynth.jobs.progress import ProgressCallback, report
from medsynth.pictures import WINDOWS, montage, orthogonal_slices, overlay_outlines, save_picture, slice_to_image, window
from medsynth.summary import describe, format_summary

LIVER = 5


def run(out_dir: Path, progress: ProgressCallback | None = None) -> list[Path]:
    report(progress, 0.0, "fetching LIDC-IDRI-0001")
    series = fetch("lidc_dicom") / "series"
    lidc = fetch("lidc")
    report(progress, 0.3, "reading the DICOM series")
    ct = read_dicom_series(series)
    labels = read_labelmap(lidc / "labels.nii.gz", lidc / "structures.csv")
    labels = resample_like(labels, ct, nearest=True)  # same physical grid, DICOM axis order
    info = describe(ct, labels)
    print("LIDC-IDRI-0001 (DICOM):")
    print(format_summary(info))
    report(progress, 0.7, "drawing slices")
    liver = labels.array == LIVER
    centre_ijk = np.argwhere(liver).mean(axis=0)[::-1]  # (k,j,i) -> (i,j,k)
    centre = ct.ijk_to_ras_points(centre_ijk)
    ct_slices = orthogonal_slices(ct, centre)
    liver_slices = orthogonal_slices(labels.with_array(liver.astype(np.uint8)), centre)
    images, titles = [], []
    for view in ("axial", "coronal", "sagittal"):
        pixels, spacing = ct_slices[view]
        gray = window(pixels, *WINDOWS["soft_tissue"])
        rgb = overlay_outlines(gray, [liver_slices[view][0] > 0])
        images.append(slice_to_image(rgb, spacing))
        titles.append(f"{view} (liver outlined)")
    path = save_picture(montage(images, titles), Path(out_dir) / "lidc_ct_liver.png")
    report(progress, 1.0, "done")
    return [path]
