"""The dataset job: prepare a case (or a tumor variant of it) once, then project its views.

``prepare_group`` reads a CT and its label map, paints the variant's tumors (``tumor.synthesize``)
and packs the volume for the marcher (``drr.prepare``) and the projected structures
(``drr.structures``). ``render_item`` projects one view with ``drr.job.render`` and writes its
folder atomically: images, masks, a de-identified synthetic DICOM and item.json (its manifest
row). ``run_item`` is what a local loop and a Dask worker call: a per-process cache keeps the
prepared groups, so a worker prepares each CT once and no CT travels with a task.
"""

from __future__ import annotations

import dataclasses
import errno
import fnmatch
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medsynth import __version__
from medsynth.dataset.plan import PlanItem, variant_label
from medsynth.dataset.recipe import TUMOR_STRUCTURE, Case, Recipe
from medsynth.errors import InputError
from medsynth.parameters import to_dict
from medsynth.tumor.organ import ORGAN_LABEL_NAMES
from medsynth.volume import LabelMap, Volume

ITEM_FILE = "item.json"


@dataclass
class CaseInputs:
    """A case's input files and their SHA-256 checksums (computed once per run, in the manifest)."""

    case: Case
    checksums: dict[str, str] = field(default_factory=dict)


@dataclass
class PreparedGroup:
    """What a worker keeps per (case, variant): the packed CT and structures, the tumors painted."""

    case: str
    variant: int | None
    prepared: object  # medsynth.drr.PreparedVolume
    structures: object  # medsynth.drr.structures.StructureProjector
    center_ras: tuple[float, float, float]
    grid: "_GridProbe"  # the CT's geometry without its voxels: pose checks
    tumors: list[dict]
    identifiers: dict


# --- inputs -------------------------------------------------------------------------------------
def checksum(path: Path) -> str:
    """SHA-256 of a file, or of a DICOM folder's files (names and contents, sorted)."""
    import hashlib

    from medsynth.io.checksum import sha256_of

    path = Path(path)
    if path.is_file():
        return sha256_of(path)
    digest = hashlib.sha256()
    for member in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{member.relative_to(path).as_posix()}:{sha256_of(member)}\n".encode())
    return digest.hexdigest()


def case_inputs(case: Case) -> CaseInputs:
    sums = {what: checksum(getattr(case, what)) for what in ("ct", "labels", "table") if getattr(case, what)}
    return CaseInputs(case, sums)


def check_grids(case: Case) -> None:
    """Fail before any output when a case's label map is not on its CT's grid (file headers only)."""
    import SimpleITK as sitk

    if case.labels is None or not case.ct.is_file() or not case.labels.is_file():
        return
    headers = []
    for path in (case.ct, case.labels):
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        try:
            reader.ReadImageInformation()
        except RuntimeError as error:
            raise InputError(f"case {case.name}: {path.name} cannot be read as an image: {error}") from None
        headers.append((reader.GetSize(), reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection()))
    (size, spacing, origin, direction), (lsize, lspacing, lorigin, ldirection) = headers
    same = (size == lsize and np.allclose(spacing, lspacing, atol=1e-3) and np.allclose(origin, lorigin, atol=1e-2)
            and np.allclose(direction, ldirection, atol=1e-4))
    if not same:
        raise InputError(
            f"case {case.name}: the label map {case.labels.name} (size {list(lsize)}, spacing "
            f"{[round(s, 3) for s in lspacing]}) is not on the CT's grid (size {list(size)}, spacing "
            f"{[round(s, 3) for s in spacing]}); resample it onto the CT (nearest neighbour: "
            "medsynth.io.resample_like) or give the label map made from this CT.")


def _source_identifiers(ct_path: Path) -> dict:
    """Patient and study identifiers of a DICOM source (only for ``output.keep_identifiers``)."""
    import pydicom

    files = sorted(p for p in Path(ct_path).rglob("*") if p.is_file()) if Path(ct_path).is_dir() else [Path(ct_path)]
    for path in files:
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - not a DICOM file: try the next one
            continue
        keys = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                "StudyInstanceUID", "StudyID", "AccessionNumber", "InstitutionName", "ReferringPhysicianName")
        return {key: str(header.get(key, "")) for key in keys if header.get(key) not in (None, "")}
    return {}


# --- preparing a group ----------------------------------------------------------------------------
def structure_masks(recipe: Recipe, labels: LabelMap | None, tumor_mask: np.ndarray | None) -> dict[str, np.ndarray]:
    """{structure name: bool mask} of the recipe's ``labels.structures`` on the CT's grid."""
    masks = {}
    for name, patterns in recipe.labels.structures.items():
        if name == TUMOR_STRUCTURE:
            masks[name] = tumor_mask if tumor_mask is not None else np.zeros(labels.array.shape, bool)
            continue
        values = set()
        for pattern in patterns:
            if str(pattern).lstrip("-").isdigit():
                values.add(int(pattern))
                continue
            found = [value for value, label in labels.table.names.items() if fnmatch.fnmatch(label.lower(), pattern.lower())]
            if not found:
                known = ", ".join(sorted(labels.table.names.values())[:12])
                raise InputError(f"recipe.labels.structures.{name}: no label matches {pattern!r} in this case's label "
                                 f"table (known: {known}, ...); fix the name or pattern.")
            values.update(found)
        masks[name] = np.isin(labels.array, sorted(values))
    return masks


def organ_mask(labels: LabelMap, organ: str, case: str) -> np.ndarray:
    names = [n for n in ORGAN_LABEL_NAMES.get(organ, (organ,)) if n in labels.table]
    if not names:
        raise InputError(f"case {case}: its label table has no {organ} label ({', '.join(ORGAN_LABEL_NAMES.get(organ, (organ,)))}); "
                         "give a label map with the organ, or another tumor organ.")
    mask = np.zeros(labels.array.shape, bool)
    for name in names:
        mask |= labels.mask(name)
    if not mask.any():
        raise InputError(f"case {case}: the {organ} label is empty in {labels.metadata.source}; tumors need the organ.")
    return mask


def _read_case(case: Case) -> tuple[Volume, LabelMap | None]:
    from medsynth.io import read_labelmap, read_volume

    ct = read_volume(case.ct, modality="CT")
    ct.require_hu()
    labels = None
    if case.labels is not None:
        labels = read_labelmap(case.labels, case.table)
        try:
            ct.require_same_grid(labels, "label map")
        except InputError as error:
            raise InputError(f"case {case.name}: {error}") from None
    return ct, labels


def prepare_group(recipe: Recipe, case: Case, variant: int | None, seed: int | None) -> PreparedGroup:
    """Read, paint (a tumor variant) and pack one CT for many views."""
    from medsynth.drr import prepare
    from medsynth.drr.job import job_materials
    from medsynth.drr.structures import ct_density, structure_projector

    ct, labels = _read_case(case)
    tumors, tumor_mask = [], None
    if variant is not None:
        from medsynth.tumor import synthesize

        parameters = recipe.tumor.parameters_of(variant, seed)
        result = synthesize(ct, organ_mask(labels, parameters.organ, case.name), parameters.to_spec(),
                            np.random.default_rng(seed), output_labels="none")
        ct, tumor_mask = result.ct, result.tumor_mask()
        tumors = [{"index": t.index, "kind": t.kind, "center_ras": t.center_ras,
                   "equivalent_diameter_mm": t.equivalent_diameter_mm, "volume_ml": t.volume_ml} for t in result.tumors]
    parameters = recipe.drr.parameters
    prepared = prepare(ct, job_materials(ct, parameters, labels))
    masks = structure_masks(recipe, labels, tumor_mask) if recipe.labels.structures else {}
    density = ct_density(prepared) if recipe.labels.area_density and masks else None
    projector = structure_projector(masks, ct.ijk_to_ras, density)
    identifiers = _source_identifiers(case.ct) if recipe.output.keep_identifiers else {}
    grid = _GridProbe(Volume(np.zeros((1, 1, 1), np.int16), ct.ijk_to_ras), ct.shape_ijk)
    center = tuple(float(v) for v in ct.center_ras)
    return PreparedGroup(case.name, variant, prepared, projector, center, grid, tumors, identifiers)


@dataclass
class _GridProbe:
    """The CT's geometry without its voxels (what ``CArm.validate`` needs to find the source inside it)."""

    volume: Volume
    shape: tuple[int, int, int]

    @property
    def shape_ijk(self) -> tuple[int, int, int]:
        return self.shape

    def ras_to_ijk_points(self, points):
        return self.volume.ras_to_ijk_points(points)


# --- one item -------------------------------------------------------------------------------------
def _pose(item: PlanItem, group: PreparedGroup):
    if item.isocenter_absolute:
        return item.pose
    center = np.asarray(group.center_ras) + np.array(item.pose.isocenter)
    return item.pose.moved_to(center)


def _flat(prefix: str, data: dict) -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flat(f"{prefix}{key}.", value))
        else:
            flat[prefix + key] = value
    return flat


def item_row(recipe: Recipe, inputs: CaseInputs, item: PlanItem, group: PreparedGroup, pose, carm,
             files: dict, stats: dict) -> dict:
    """The manifest row of one image: inputs and checksums, every parameter, seeds, geometry, files."""
    case = inputs.case
    parameters = dataclasses.replace(recipe.drr.parameters, pose=pose, seed=item.seed)
    row = {"item": item.key, "case": item.case, "variant": variant_label(item.variant), "view": item.view,
           "pose_name": item.pose_name,
           "seed": item.seed, "tumor_seed": item.tumor_seed, "recipe_seed": recipe.seed,
           "recipe_sha256": recipe.digest(), "medsynth_version": __version__, "synthetic": True,
           "ct": str(case.ct), "ct_sha256": inputs.checksums.get("ct", ""),
           "labels": str(case.labels or ""), "labels_sha256": inputs.checksums.get("labels", ""),
           "table": str(case.table or ""), "table_sha256": inputs.checksums.get("table", ""),
           "projection_matrix": [float(v) for v in carm.projection_matrix().reshape(-1)],
           "source_position": [float(v) for v in carm.source_position()],
           "tumors": len(group.tumors)}
    row.update(_flat("drr.", to_dict(parameters)))
    if item.variant is not None:
        row.update(_flat("tumor.", to_dict(recipe.tumor.parameters_of(item.variant, item.tumor_seed))))
    row.update({f"file.{name}": f"{item.key}/{path}" for name, path in files.items()})
    row.update(stats)
    return row


@dataclass
class ProjectedItem:
    """One item's images in memory, not yet written."""

    item: PlanItem
    pose: object  # CArmPose with the absolute isocenter
    carm: object
    projection: object
    structures: list
    translated: dict = field(default_factory=dict)  # model id -> Volume (the recipe's model stage)


def project_item(recipe: Recipe, item: PlanItem, group: PreparedGroup) -> ProjectedItem:
    """March one view and its structures (``drr.job.render`` with the item's own seed)."""
    from medsynth.drr.job import render

    pose = _pose(item, group)
    parameters = recipe.drr.parameters
    carm = parameters.carm(pose)
    try:
        carm.validate(group.grid)
    except InputError as error:
        raise InputError(f"{item.key}: {error}") from None
    projection = render(group.prepared, parameters, [pose], seeds=[item.seed], validate=False)[0]
    structures = group.structures.project(carm, device=projection.settings.get("device", "cpu"))
    translated = {}
    if recipe.model is not None:
        from medsynth.generative.inference import translate

        translated[recipe.model.id] = translate(projection.as_volume(recipe.model.image), recipe.model.id)
    return ProjectedItem(item, pose, carm, projection, structures, translated)


def write_projected(recipe: Recipe, inputs: CaseInputs, projected: ProjectedItem, group: PreparedGroup,
                    out_dir: Path) -> dict:
    """Write one item's folder atomically (item.json last); return its manifest row."""
    from medsynth.dataset.writing import write_item
    from medsynth.io.atomic import atomic_output

    item = projected.item
    try:
        with atomic_output(Path(out_dir) / item.key, directory=True) as folder:
            files, stats = write_item(projected.projection, projected.structures, folder, recipe, item, group,
                                      projected.translated)
            row = item_row(recipe, inputs, item, group, projected.pose, projected.carm, files, stats)
            (folder / ITEM_FILE).write_text(json.dumps(row, indent=1, sort_keys=True) + "\n")
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InputError(f"{item.key}: the disk is full ({error.strerror}) writing into {out_dir}; free space or "
                             "choose another --out, then run again: finished items are kept.") from None
        raise
    return row


def render_item(recipe: Recipe, inputs: CaseInputs, item: PlanItem, group: PreparedGroup, out_dir: Path) -> dict:
    """Project one view and write its folder atomically; return its manifest row."""
    return write_projected(recipe, inputs, project_item(recipe, item, group), group, out_dir)


# --- the per-process cache ----------------------------------------------------------------------
#: Prepared groups kept per process (a Dask worker keeps its last ones; LIDC-size CTs take ~0.3 GB each).
CACHE_GROUPS = 2
_cache: "OrderedDict[tuple, PreparedGroup]" = OrderedDict()
_cache_lock = threading.Lock()
_group_locks: dict[tuple, threading.Lock] = {}
_failed_groups: dict[tuple, InputError] = {}  # a case that cannot be prepared fails its other views at once


def preparation_key(recipe: Recipe, inputs: CaseInputs, item: PlanItem) -> str:
    """What a prepared group depends on (its inputs, tumor, materials, structures), not the views:
    recipes that differ only in their views or outputs share a worker's prepared CTs."""
    import hashlib

    tumor = None if item.variant is None else to_dict(recipe.tumor.parameters_of(item.variant, item.tumor_seed))
    drr = recipe.drr.parameters
    parts = [inputs.case.name, str(inputs.case.ct), str(inputs.case.labels), str(inputs.case.table), inputs.checksums,
             item.variant, tumor, drr.physics, drr.materials, recipe.labels.structures, recipe.labels.area_density,
             recipe.output.keep_identifiers]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def cached_group(recipe: Recipe, inputs: CaseInputs, item: PlanItem) -> PreparedGroup:
    """The prepared (case, variant) of ``item``, made once per process and kept for its other views."""
    key = preparation_key(recipe, inputs, item)
    with _cache_lock:
        lock = _group_locks.setdefault(key, threading.Lock())
    with lock:
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
            if key in _failed_groups:
                raise _failed_groups[key]
        try:
            group = prepare_group(recipe, inputs.case, item.variant, item.tumor_seed)
        except InputError as error:
            with _cache_lock:
                _failed_groups[key] = error
            raise
        with _cache_lock:
            _cache[key] = group
            while len(_cache) > CACHE_GROUPS:
                _cache.popitem(last=False)
        return group


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
        _failed_groups.clear()


def is_done(out_dir: Path, item: PlanItem) -> bool:
    """An item is done when its folder exists: folders appear whole (atomic rename), item.json inside."""
    return (Path(out_dir) / item.key / ITEM_FILE).is_file()


def run_item(recipe: Recipe, inputs: CaseInputs, item: PlanItem, out_dir: str | Path) -> dict:
    """Make one item unless it is done; return its manifest row (read back when it was done)."""
    out_dir = Path(out_dir)
    if is_done(out_dir, item):
        return json.loads((out_dir / item.key / ITEM_FILE).read_text())
    return render_item(recipe, inputs, item, cached_group(recipe, inputs, item), out_dir)
