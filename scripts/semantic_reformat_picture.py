#!/usr/bin/env python
"""Coronal and sagittal reformats of CTs generated slice by slice: do neighbouring slices agree?

    python scripts/semantic_reformat_picture.py [--models spade-ct,spade-ct-256] [--out Resources/Screenshots/semantic_reformats.png]

Generates LIDC-IDRI-0001's whole volume from its label map with each model and shows the real CT
and every model in axial, coronal and sagittal views (soft-tissue window), plus the mean absolute
difference between neighbouring axial slices inside the body (real vs generated: a striped volume
shows a much larger slice-to-slice change than the real CT).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def reformats(volume, index_k: int) -> tuple[list[np.ndarray], tuple]:
    from medsynth.generative.slice_grid import to_display_orientation

    oriented = to_display_orientation(volume).array  # [k (superior), j (posterior), i (left)]
    axial = oriented[index_k]
    coronal = oriented[::-1, oriented.shape[1] // 2, :]
    sagittal = oriented[::-1, :, oriented.shape[2] // 2]
    return [axial, coronal, sagittal], to_display_orientation(volume).spacing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="spade-ct,spade-ct-256")
    parser.add_argument("--out", default=str(REPO / "Resources" / "Screenshots" / "semantic_reformats.png"))
    args = parser.parse_args(argv)
    import torch

    from medsynth.data import fetch
    from medsynth.generative.inference import generate
    from medsynth.io import read_labelmap, read_volume
    from medsynth.pictures import WINDOWS, montage, save_picture, slice_to_image, window

    torch.set_num_threads(1)
    lidc = fetch("lidc")
    ct = read_volume(lidc / "ct.nii.gz", modality="CT")
    labels = read_labelmap(lidc / "labels.nii.gz", lidc / "structures.csv")
    volumes = {"real CT": ct.with_array(np.maximum(ct.array, -1024).astype(np.float32))}
    for model_id in args.models.split(","):
        volumes[model_id] = generate(labels, model_id, seed=0, body=ct.array > -500)[0]
    body = ct.array > -500
    tiles, titles = [], []
    for name, volume in volumes.items():
        views, spacing = reformats(volume, 62)
        step = np.abs(np.diff(np.where(body, volume.array, 0), axis=0))[body[1:] & body[:-1]].mean()
        sizes = [(spacing[1], spacing[0]), (spacing[2], spacing[0]), (spacing[2], spacing[1])]
        for view, title, size in zip(views, ("axial", "coronal", "sagittal"), sizes):
            tiles.append(slice_to_image(window(view, *WINDOWS["soft_tissue"]), size, mm_per_pixel=1.0))
            titles.append(f"{name}: {title}" + (f" (slice-to-slice {step:.0f} HU)" if title == "axial" else ""))
        print(f"{name}: mean |neighbouring slice difference| in the body {step:.1f} HU")
    save_picture(montage(tiles, titles, columns=3), Path(args.out))
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
