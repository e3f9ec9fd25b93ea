"""Demo step: a virtual C-arm around LIDC-IDRI-0001 at two poses, the DRRs it takes, and their images.

What a DRRProjection user sees, rendered headlessly: the CT (skin and bones) with the C-arm models
of the module at an AP and an oblique (LAO 30, CRAN 20) pose, the radiograph of each pose on its
detector and beside it, and the other images one ray march gives (-log, bone only, soft tissue
only, the 60/120 kV dual-energy pair). The DRRs go through the module's MRML logic on a headless
scene, exactly as in Slicer.
"""

from __future__ import annotations

import dataclasses

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from medsynth.data import fetch
from medsynth.io import read_volume
from medsynth.jobs.progress import ProgressCallback, report, sub_progress
from medsynth.pictures import montage, save_picture, slice_to_image

#: The two poses shown: (file stem, title, primary angle, secondary angle).
POSES = (("ap", "AP (0 / 0)", 0.0, 0.0), ("lao30_cran20", "LAO 30 / CRAN 20", 30.0, 20.0))
DETECTOR_PIXELS = 384


def _picture(image: np.ndarray, kind: str) -> np.ndarray:
    from medsynth.drr.display import to_uint8

    picture, _window = to_uint8(image, invert=kind.endswith("intensity"))  # bone bright, like a radiograph
    return picture


def _titled(image: Image.Image, title: str) -> Image.Image:
    sheet = Image.new("RGB", (image.width, image.height + 18), (0, 0, 0))
    sheet.paste(image.convert("RGB"), (0, 18))
    ImageDraw.Draw(sheet).text((4, 3), title, fill=(255, 255, 255))
    return sheet


def run(out_dir: Path, progress: ProgressCallback | None = None, size: tuple[int, int] = (560, 420)) -> list[Path]:
    from medsynth import drr
    from medsynth.mrml import get_scene, node_to_volume, volume_to_node
    from medsynth.drr.parameters import DRRParameters
    from medsynth.module_logic.drr import DRRLogic
    from medsynth.module_logic.scene_pictures import ct_surfaces, render_scene

    out_dir = Path(out_dir)
    report(progress, 0.0, "fetching LIDC-IDRI-0001")
    ct = read_volume(fetch("lidc") / "ct.nii.gz", modality="CT")
    get_scene()
    ct_node = volume_to_node(ct, name="LIDC-IDRI-0001")
    logic = DRRLogic()
    request = DRRParameters.from_preset("mobile", detector_pixels=DETECTOR_PIXELS)
    request = request.replace(pose=request.pose.moved_to(ct.center_ras))
    report(progress, 0.05, "skin and bone surfaces")
    surfaces = ct_surfaces(ct)
    written, panels = [], []
    for index, (stem, title, primary, secondary) in enumerate(POSES):
        step = sub_progress(progress, 0.1 + 0.35 * index, 0.1 + 0.35 * (index + 1))
        pose = request.replace(pose=dataclasses.replace(request.pose, primary_angle=primary, secondary_angle=secondary))
        node = logic.process(ct_node, pose, progress=sub_progress(step, 0.0, 0.6))[0]
        view = logic.carm_of_drr(node)
        image = node_to_volume(node).array[0]  # I/I0
        picture = _picture(-np.log(np.maximum(image, 1e-12)), "log")  # shown as -log: bone bright
        report(step, 0.7, f"3D view at {title}")
        scene = Image.fromarray(render_scene(ct, view, drr=picture.astype(np.float32), size=size, surfaces=surfaces))
        radiograph = slice_to_image(picture, view.spacing_rc).resize((size[1], size[1]), Image.BILINEAR)
        written.append(save_picture(scene, out_dir / f"drr_scene_{stem}.png"))
        written.append(save_picture(radiograph, out_dir / f"drr_{stem}.png"))
        panels += [_titled(scene, f"C-arm at {title}"), _titled(radiograph, f"DRR, {title}")]
    written.insert(0, save_picture(montage(panels, columns=2), out_dir / "drr.png"))

    report(progress, 0.85, "one march, many images")
    carm = request.replace(pose=dataclasses.replace(request.pose, primary_angle=30.0, secondary_angle=20.0),
                           detector_rows=256, detector_columns=256,
                           pixel_spacing=request.pixel_spacing * DETECTOR_PIXELS / 256).carm()
    projection = drr.project(ct, carm, outputs=("intensity", "log", "dual_energy", "materials"))[0]
    kinds = (("intensity", "radiograph I/I0"), ("log", "-log line integral"), ("bone_log", "bone only"),
             ("soft_tissue_log", "soft tissue only"), ("low_log", "60 kV"), ("high_log", "120 kV"))
    images = [slice_to_image(_picture(projection.images[k], k), carm.spacing_rc) for k, _ in kinds]
    written.append(save_picture(montage(images, [t for _, t in kinds], columns=3), out_dir / "drr_outputs.png"))
    get_scene().RemoveNode(ct_node)
    report(progress, 1.0, "done")
    return written
