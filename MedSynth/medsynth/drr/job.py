"""The DRR job: one CT + ``DRRParameters`` + poses -> Projections, for every front door.

The Slicer module's logic, the web app, ``medsynth drr``, the DRR batch script and a dataset
recipe all call these three functions, so the same parameters give the same images everywhere::

    materials = job_materials(ct, parameters, labels)      # once per CT
    prepared = prepare(ct, materials)                      # once per CT (the packed volume)
    projections = render(prepared, parameters, poses)      # many views

Each view's noise comes from its own seed (``view_seeds``), never from a generator shared
between views, so a resumed or distributed sweep draws what an uninterrupted one draws.
"""

from __future__ import annotations

from typing import Sequence

from medsynth.drr.parameters import OUTPUT_KINDS, CArmPose, DRRParameters
from medsynth.errors import InputError
from medsynth.jobs.progress import CancelToken, ProgressCallback
from medsynth.jobs.seeds import item_seed
from medsynth.volume import LabelMap, Volume


def job_materials(ct: Volume, parameters: DRRParameters, labels: LabelMap | None = None):
    """The projector's ``materials``: DeepDRR's HU thresholds (None), plastimatch's model, or label-mapped."""
    from medsynth.drr.materials import LabelMaterials, parse_mapping

    if parameters.physics == "plastimatch":
        if labels is not None and parameters.materials:
            raise InputError("The plastimatch model has one material: drop the label -> material map.")
        return "plastimatch"
    if not parameters.materials:
        return None
    if labels is None:
        raise InputError("A label -> material map needs a label map (or segmentation) on the CT's grid. "
                         "Give one, or clear the map to use HU thresholds.")
    ct.require_same_grid(labels, "label map")
    return LabelMaterials(labels, parse_mapping(parameters.materials))


def view_seeds(parameters: DRRParameters, count: int, *keys) -> list[int]:
    """One seed per view, from the parameters' seed, the caller's keys (case, variant) and the view index."""
    return [item_seed(parameters.seed, *keys, "view", index) for index in range(count)]


def render(prepared, parameters: DRRParameters, poses: Sequence[CArmPose] | None = None, *,
           seeds: Sequence[int] | None = None, preview: bool = False, validate: bool = True,
           progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> list:
    """Projections of a prepared CT (``medsynth.drr.prepare``) at ``poses`` (default: the parameters' pose).

    ``seeds``: one noise seed per view (default ``view_seeds``). ``preview``: the live view, the
    detector binned by ``preview_factor``. Raises GeometryError for a pose the C-arm cannot take.
    """
    from medsynth.drr.projector import project
    from medsynth.jobs.progress import check_cancel, report

    poses = [parameters.pose] if poses is None else list(poses)
    if not poses:
        raise InputError("No C-arm pose to render. Give at least one pose.")
    seeds = view_seeds(parameters, len(poses)) if seeds is None else list(seeds)
    if len(seeds) != len(poses):
        raise InputError(f"{len(seeds)} seeds for {len(poses)} poses: give one seed per pose.")
    carms = [parameters.carm(pose) for pose in poses]
    preview_pixels = None
    if preview and parameters.preview_factor > 1:
        preview_pixels = max(8, round(max(parameters.detector_rows, parameters.detector_columns)
                                      / parameters.preview_factor))
    options = dict(spectrum=parameters.spectrum(), photons=parameters.photons_or_none(), outputs=parameters.outputs(),
                   dual_energy=parameters.dual_energy_spectra(), scatter=parameters.scatter,
                   blur_sigma=parameters.blur_sigma, device=parameters.device, preview=preview_pixels,
                   validate=validate)
    projections = []
    for index, (carm, seed) in enumerate(zip(carms, seeds)):
        check_cancel(cancel)
        projections += project(prepared, carm, seed=seed, cancel=cancel, **options)
        report(progress, (index + 1) / len(carms), f"view {index + 1}/{len(carms)}")
    return projections


def shown_images(projection, parameters: DRRParameters) -> dict:
    """The images the output kind puts in the output volume(s): name -> one-slice Volume on the detector."""
    _label, kinds, _outputs = OUTPUT_KINDS[parameters.output_kind]
    missing = [kind for kind in kinds if kind not in projection.images]
    if missing:
        raise InputError(
            f"This projection has no {', '.join(missing)} image: its materials are "
            f"{', '.join(projection.material_names)}. Use materials that include it (HU thresholds give air, "
            "soft tissue and bone)."
        )
    return {kind: projection.as_volume(kind) for kind in kinds}
