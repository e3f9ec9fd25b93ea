"""What one dataset item leaves on disk (inside its atomic folder).

    <case>/<variant>/view_NNNN/
      log.nii  intensity.nii  [low_log.nii high_log.nii bone_log.nii ...]   calibrated images
      mask_<structure>.nii (uint8)  density_<structure>.nii (g/cm^2)          projected labels
      model_<id>.nii                                                         the model stage's translation
      drr.png  drr.dcm  item.json                                            picture, DICOM, manifest row

Images are NIfTI placed in the detector plane (``Projection.as_volume``), uncompressed unless the
recipe asks for ``compress``: writing then costs a small part of the march. Every file is
deterministic (the DICOM's UIDs derive from the item's name and seed), so a resumed or
distributed run writes bit-identical files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsynth.dataset.plan import PlanItem
from medsynth.dataset.recipe import Recipe

#: PNG zlib level of drr.png: 1 encodes a 512^2 view several times faster than PIL's default 6.
PNG_COMPRESS_LEVEL = 1


def write_item(projection, structures, folder: Path, recipe: Recipe, item: PlanItem, group,
               translated: dict | None = None) -> tuple[dict, dict]:
    """Write the item's files into ``folder``; return ({file role: name}, {statistic: value})."""
    from medsynth.drr.projector import detector_volume
    from medsynth.drr.writers import write_dicom
    from medsynth.io import write_volume

    folder = Path(folder)
    formats = recipe.output.formats
    suffix = ".nii.gz" if recipe.output.compress else ".nii"
    files: dict[str, str] = {}
    stats: dict[str, float] = {}
    if "nifti" in formats:
        for kind in projection.images:
            files[kind] = write_volume(projection.as_volume(kind), folder / f"{kind}{suffix}",
                                       compress=recipe.output.compress).name
    for model_id, image in (translated or {}).items():
        if "nifti" in formats:
            files[f"model.{model_id}"] = write_volume(image, folder / f"model_{model_id}{suffix}",
                                                      compress=recipe.output.compress).name
    for structure in structures:
        stats[f"pixels.{structure.name}"] = int(structure.mask.sum())
        stats[f"max_thickness_mm.{structure.name}"] = float(structure.thickness_mm.max(initial=0.0))
        if "nifti" in formats:
            plane = detector_volume(projection.carm, structure.mask, "mask")
            mask = plane.with_array(structure.mask[np.newaxis].astype(np.uint8))
            files[f"mask.{structure.name}"] = write_volume(mask, folder / f"mask_{structure.name}{suffix}",
                                                           compress=recipe.output.compress).name
            if structure.area_density is not None:
                density = detector_volume(projection.carm, structure.area_density, "area_density")
                files[f"density.{structure.name}"] = write_volume(
                    density, folder / f"density_{structure.name}{suffix}", compress=recipe.output.compress).name
    if "png" in formats:
        from PIL import Image

        pixels, _window = projection.display("log")
        # zlib level 1: a third of the default's encoding time (the item's folder is already atomic)
        Image.fromarray(pixels).save(folder / "drr.png", format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        files["png"] = "drr.png"
    if "dicom" in formats:
        write_dicom(projection, folder / "drr.dcm", uid_key=f"{recipe.digest()}/{item.key}/{item.seed}",
                    identifiers=group.identifiers or None, dates=bool(group.identifiers))
        files["dicom"] = "drr.dcm"
    return files, stats
