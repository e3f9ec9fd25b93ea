"""Real and synthetic images for the reader-study tests, made from the fetched LIDC-IDRI-0001 scan.

Real: three slices of the real DICOM series and pydicom's real CT_small.dcm, under file names and
tags that give the answer away (so the tests can check that the study hides them). Synthetic:
three axial slices generated from LIDC's label map by the project's SPADE model, saved as PNG
with text chunks and EXIF that say "synthetic".
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from medsynth.display import CT_WINDOWS, level_width_range, to_grey

REAL_SLICES = ("1-070.dcm", "1-071.dcm", "1-072.dcm")
#: Words that must never appear in a blinded study image.
LEAKS = (b"LIDC", b"synthetic", b"MedSynth", b"spade", b"CT_small", b"DICM", b"real")


def make_real(folder: Path, lidc_dicom_dir: Path, pydicom_dir: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(REAL_SLICES):
        shutil.copy(lidc_dicom_dir / name, folder / f"LIDC-IDRI-0001_real_{index}.dcm")
    shutil.copy(pydicom_dir / "CT_small.dcm", folder / "CT_small_real.dcm")
    return folder


def make_synthetic(folder: Path, lidc_dir: Path) -> Path:
    import torch

    from medsynth.generative.inference import generate
    from medsynth.io import read_labelmap
    from medsynth.volume import display_oriented

    torch.set_num_threads(1)
    folder.mkdir(parents=True, exist_ok=True)
    labels = read_labelmap(lidc_dir / "labels.nii.gz", lidc_dir / "structures.csv")
    volume = display_oriented(generate(labels, "spade-ct", slices="60..62", seed=3)[0])
    low, high = level_width_range(*CT_WINDOWS["soft_tissue"])
    for k in range(volume.array.shape[0]):
        grey = to_grey(np.asarray(volume.array[k]), low, high)
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", "MedSynth spade-ct synthetic")
        exif = Image.Exif()
        exif[0x010E] = "synthetic slice"  # ImageDescription
        Image.fromarray(grey).save(folder / f"synthetic_spade_{k}.png", pnginfo=info, exif=exif)
    return folder
