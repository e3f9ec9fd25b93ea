"""What a synthesis leaves on disk: CT, label map, tumors.json and a picture through every tumor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from medsynth.pictures import WINDOWS, montage, overlay_outlines, save_picture, slice_to_image, window
from medsynth.volume import LabelMap, Volume, display_oriented

#: Half-width (mm) of the square cut around each tumor, at least.
MIN_HALF_WIDTH_MM = 30.0


def tumor_picture(ct: Volume, labels: LabelMap, tumors: list, tumor_value: int = 2, liver_value: int | None = 1,
                  max_tumors: int = 30) -> Image.Image:
    """Axial and coronal cuts through each tumor's centre, organ (green) and tumor (red) outlines.

    The liver window for the liver; the soft-tissue window for other organs (an enhanced kidney is
    brighter than the liver window shows).
    """
    oriented_ct = display_oriented(ct)  # i -> patient left, j -> posterior, k -> superior
    oriented_labels = display_oriented(labels)
    organ = labels.table.names.get(liver_value, "liver") if liver_value is not None else "liver"
    level, width = WINDOWS["liver" if organ == "liver" else "soft_tissue"]
    si, sj, sk = oriented_ct.spacing
    images, titles = [], []
    for tumor in tumors[:max_tumors]:
        i, j, k = np.clip(np.rint(oriented_ct.ras_to_ijk_points(tumor.center_ras)).astype(int), 0,
                          np.array(oriented_ct.shape_ijk) - 1)
        half = max(MIN_HALF_WIDTH_MM, 1.5 * max(tumor.semi_axes_mm))
        hi, hj, hk = (int(np.ceil(half / s)) for s in (si, sj, sk))
        i0, j0, k0 = max(i - hi, 0), max(j - hj, 0), max(k - hk, 0)
        cuts = {
            "axial": (oriented_ct.array[k, j0:j + hj + 1, i0:i + hi + 1],
                      oriented_labels.array[k, j0:j + hj + 1, i0:i + hi + 1], (sj, si)),
            "coronal": (oriented_ct.array[k0:k + hk + 1, j, i0:i + hi + 1][::-1],
                        oriented_labels.array[k0:k + hk + 1, j, i0:i + hi + 1][::-1], (sk, si)),
        }
        for view, (pixels, label_slice, spacing) in cuts.items():
            masks = [label_slice == tumor_value]
            if liver_value is not None:
                masks.insert(0, (label_slice == liver_value) | (label_slice == tumor_value))
            colors = [(80, 220, 80), (255, 60, 60)] if liver_value is not None else [(255, 60, 60)]
            rgb = overlay_outlines(window(pixels, level, width), masks, colors)
            image = slice_to_image(rgb, spacing, mm_per_pixel=0.5)
            images.append(image.resize((160, int(160 * image.height / max(image.width, 1)))))
            titles.append(f"#{tumor.index} {tumor.kind} {tumor.equivalent_diameter_mm:.0f}mm {view}")
    if not images:
        blank = window(oriented_ct.array[oriented_ct.array.shape[0] // 2], level, width)
        return slice_to_image(blank, (sj, si))
    return montage(images, titles, columns=min(8, len(images)))


def write_outputs(result, folder: str | Path, ct_name: str = "ct.nii.gz", labels_name: str = "labels.nii.gz",
                  tumor_value: int = 2, liver_value: int = 1, **json_extra) -> dict[str, Path]:
    """Write the result's CT (int16 HU), label map, tumors.json and tumors.png into ``folder``."""
    from medsynth.io import write_volume
    from medsynth.tumor.engine import save_descriptions

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ct = result.ct
    if np.issubdtype(ct.array.dtype, np.floating):
        ct = ct.with_array(np.clip(np.rint(ct.array), -32768, 32767).astype(np.int16))
    paths = {"ct": write_volume(ct, folder / ct_name)}
    if result.labels is not None:
        paths["labels"] = write_volume(result.labels, folder / labels_name)
    paths["tumors"] = save_descriptions(result, folder / "tumors.json", **json_extra)
    if result.labels is not None:
        picture = tumor_picture(result.ct, result.labels, result.tumors, tumor_value, liver_value)
        paths["picture"] = save_picture(picture, folder / "tumors.png")
    return paths
