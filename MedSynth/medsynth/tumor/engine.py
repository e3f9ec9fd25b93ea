"""The public entry point: ``synthesize(ct, organ_mask, spec, rng, point_ras=None)``.

Each tumor is made in a box around itself on the scan's own grid: cost follows the tumor's
size, not the scan's. Every random choice comes from the generator passed in (same seed, same
tumors, bit for bit). Tumors fit inside the organ (liver, pancreas, kidneys: ``spec.organ``) by
where they are placed and how big they are, never by cutting them at the organ's surface.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import ndimage

from medsynth.errors import CancelledError, InputError
from medsynth.jobs.progress import CancelToken, ProgressCallback, report
from medsynth.tumor.appearance import MASS_EFFECT_REACH, draw_look, render_tumor
from medsynth.tumor.organ import OrganContext
from medsynth.tumor.placement import (Box, box_half_size, evaluate_at, fit_threshold_mm, fits, intersect,
                                      liver_in_box, pad_mm, region_box, screen_candidate)
from medsynth.tumor.profiles import profile
from medsynth.tumor.realism import mask_bounds, piece_at, realism_stats
from medsynth.tumor.shape import ShapeField, TumorShape, evaluate_shape
from medsynth.tumor.spec import TUMOR_TYPES, TumorSpec, planned_types
from medsynth.tumor.vessels import VESSEL_MIN_EXCESS_HU, find_vessels, parenchyma_level
from medsynth.volume import LabelMap, LabelTable, Volume

#: Random locations tried per tumor before it is made smaller.
CANDIDATES_PER_SIZE = 24
#: Grid (mm) on which random locations are screened before the full-resolution check.
SCREEN_MM = 1.4
#: Locations whose vessel share is measured (the least-vessel one wins if none is below the limit).
VESSEL_CHECKS = 4


@dataclass
class TumorDescription:
    """One synthetic tumor, as saved in tumors.json."""

    index: int
    kind: str
    placement: str  # "clicked" or "random"
    seed: int  # seed of this tumor's own generator (shape, texture, appearance)
    center_ras: list[float]
    semi_axes_mm: list[float]
    axes_ras: list[list[float]]  # unit directions of the three semi-axes
    equivalent_diameter_mm: float
    volume_ml: float
    voxels: int
    mean_hu_change: float
    parenchyma_hu: float
    tumor_mean_hu: float
    scaled_to_fit: float  # 1.0 unless the drawn size had to shrink to fit this liver
    box_ijk: list[list[int]]  # first and last voxel (i, j, k) of the changed box
    look: dict
    realism: dict

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TumorPatch:
    """What one tumor changed: its box, its label there and the CT values before (for undo)."""

    box_global: tuple[slice, slice, slice]
    label: np.ndarray  # bool, box-shaped
    original: np.ndarray  # CT voxels of the box before this tumor, original dtype


@dataclass
class TumorResult:
    ct: Volume
    labels: LabelMap | None
    tumors: list[TumorDescription]
    patches: list[TumorPatch] = field(repr=False)

    def changed_box(self) -> tuple[slice, slice, slice] | None:
        """The smallest [k, j, i] box holding every voxel that changed."""
        if not self.patches:
            return None
        return tuple(slice(min(p.box_global[a].start for p in self.patches),
                           max(p.box_global[a].stop for p in self.patches)) for a in range(3))

    def tumor_mask(self) -> np.ndarray:
        """Whole-volume bool mask of all tumors made by this call."""
        mask = np.zeros(self.ct.array.shape, bool)
        for patch in self.patches:
            mask[patch.box_global] |= patch.label
        return mask

    def undo(self, array: np.ndarray) -> None:
        """Put the original CT voxels back into ``array`` (the CT the tumors were painted into)."""
        for patch in reversed(self.patches):
            array[patch.box_global] = patch.original

    def descriptions_json(self, **extra) -> str:
        return json.dumps({**extra, "tumors": [t.to_dict() for t in self.tumors]}, indent=2)


def synthesize(
    ct: Volume,
    liver: LabelMap | Volume | np.ndarray | None,
    spec: TumorSpec | None = None,
    rng: np.random.Generator | int | None = None,
    point_ras: Sequence[float] | np.ndarray | None = None,
    liver_label: int | str | None = None,
    *,
    context: OrganContext | None = None,
    in_place: bool = False,
    output_labels: str = "liver_tumor",
    tumor_value: int = 2,
    liver_value: int = 1,
    existing_tumors: np.ndarray | None = None,
    avoid: Sequence[TumorPatch] = (),
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> TumorResult:
    """Paint synthetic tumors into an organ (``spec.organ``, default the liver) of a CT in HU.

    ``point_ras``: one RAS point (or an (N, 3) array) where tumors go, as clicked by a user;
    without it tumors are placed at random. ``output_labels``: "liver_tumor" (0 background,
    ``liver_value`` liver, ``tumor_value`` tumor), "add" (the input label map with tumors written
    as ``tumor_value``) or "none". ``in_place`` changes ``ct.array`` itself (the result's patches
    undo it); otherwise the CT is copied. ``existing_tumors`` (bool, CT grid) and the tumors of
    earlier results (``avoid``: their patches) are not overlapped.
    """
    spec = spec or TumorSpec()
    spec.validate()
    if rng is None:
        raise InputError("Pass a seeded generator (numpy.random.default_rng(seed)) or a seed: "
                         "MedSynth never uses global random state.")
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    if output_labels not in ("liver_tumor", "add", "none"):
        raise InputError(f"output_labels must be 'liver_tumor', 'add' or 'none', not {output_labels!r}.")
    if context is None:
        context = OrganContext(ct, liver, liver_label, organ=spec.organ)
    elif context.ct.array is not ct.array and not context.ct.same_grid(ct):
        raise InputError("The organ context was made for another CT. Make a new OrganContext for this CT.")
    points = None if point_ras is None else np.asarray(point_ras, dtype=float).reshape(-1, 3)
    if existing_tumors is not None and existing_tumors.shape != ct.array.shape:
        raise InputError("existing_tumors must be a mask on the CT's grid.")

    if spec.diameter_mm is not None and points is None:
        _require_room(context, spec.diameter_mm, spec.surface_margin_mm)
    plan = planned_types(spec, rng, clicked=points is not None)
    if points is not None:
        plan = plan * len(points) if len(plan) == 1 else plan
    else:  # big ones first: they are the hardest to fit
        plan.sort(key=lambda kind: -TUMOR_TYPES[kind].semi_axes_mm[1] if kind in TUMOR_TYPES else -1.0)
    out = ct.array if in_place else ct.array.copy()
    painter = _Painter(context, spec, out, existing_tumors, list(avoid))
    try:
        for index, kind in enumerate(plan):
            if cancel is not None and cancel.cancelled:
                raise CancelledError("Tumor synthesis cancelled; the CT was left unchanged.")
            tumor_seed = int(rng.integers(0, 2**63 - 1))
            point = None if points is None else points[index]
            description = painter.paint(index, kind, tumor_seed, rng, point)
            if description is not None:
                painter.descriptions.append(description)
            report(progress, (index + 1) / len(plan), f"tumor {index + 1}/{len(plan)} ({kind})")
    except BaseException:
        if in_place:  # never leave a half-changed CT behind
            for patch in reversed(painter.patches):
                out[patch.box_global] = patch.original
        raise
    new_ct = ct if in_place else ct.with_array(out)
    labels = _output_labels(context, liver, painter.patches, output_labels, tumor_value, liver_value, existing_tumors)
    return TumorResult(new_ct, labels, painter.descriptions, painter.patches)


class _Painter:
    """Places and renders tumors one at a time into ``out``."""

    def __init__(self, context: OrganContext, spec: TumorSpec, out: np.ndarray, existing: np.ndarray | None,
                 avoid: list[TumorPatch]):
        self.context = context
        self.spec = spec
        self.out = out
        self.existing = existing
        self.avoid = avoid
        self.spacing = context.spacing
        # a tumor keeps this far from the liver surface; at least one voxel (2.5 mm along thick slices),
        # so no tumor voxel is ever a neighbour of a voxel outside the liver
        self.margin = max(spec.surface_margin_mm, 1.05 * float(context.spacing.max()))
        self.patches: list[TumorPatch] = []
        self._centre_line: tuple[np.ndarray, np.ndarray] | None = None  # the pancreas's, for duct dilation
        lesion_profile = profile(spec.organ, spec.appearance.lesion, spec.contrast_phase)
        self.irregularity = 1.0 if lesion_profile is None else lesion_profile.irregularity
        # tumors placed by this call: centres (RAS) and radii (mm) of spheres inside and around each
        self.placed_centres = np.zeros((0, 3))
        self.placed_inner = np.zeros(0)
        self.placed_outer = np.zeros(0)
        self.descriptions: list[TumorDescription] = []
        self._occupied: np.ndarray | None = None  # tumors over the liver's bounding box, once needed

    # --- placement ---------------------------------------------------------------------------
    def paint(self, index: int, kind: str, seed: int, rng: np.random.Generator, point) -> TumorDescription | None:
        tumor_rng = np.random.default_rng(seed)
        shape = TumorShape.draw(tumor_rng, kind, self.spec.diameter_mm)
        if self.irregularity != 1.0:
            shape = shape.roughened(self.irregularity)
        reach = MASS_EFFECT_REACH if self.spec.appearance.mass_effect else 1.0
        if point is not None:
            centre, box, field, scale = self._place_clicked(shape, kind, point, reach)
            placement = "clicked"
        else:
            placed = self._place_random(shape, rng, reach)
            if placed is None:
                return None
            centre, box, field, scale, shape = placed
            placement = "random"
        return self._render(index, kind, placement, seed, tumor_rng, shape, centre, box, field, scale)

    def _occupancy(self) -> np.ndarray:
        """Every tumor already there, over the liver's bounding box (built once, kept up to date).

        Tumors lie inside the liver, so its box holds them all: one slice answers "is a tumor here?"
        instead of a loop over every earlier patch.
        """
        if self._occupied is None:
            liver_box = region_box(self.context.bounding_box())
            self._occupied = self._others_from_patches(liver_box, self.avoid + self.patches)
            if self._occupied is None:
                self._occupied = np.zeros(liver_box.shape, bool)
        return self._occupied

    def _others_label(self, box: Box) -> np.ndarray | None:
        """Tumors already there (this call's and the caller's), over ``box``; None if none."""
        if self._occupied is None:
            return self._others_from_patches(box, self.avoid + self.patches)
        bbox = self.context.bounding_box()
        overlap = intersect(box, bbox)
        if overlap is None:
            return None
        block = self._occupied[overlap[1]]
        if not block.any():
            return None
        mask = np.zeros(box.shape, bool)
        mask[overlap[0]] = block
        return mask

    def _others_from_patches(self, box: Box, patches: list[TumorPatch]) -> np.ndarray | None:
        """Tumors of ``patches`` and the caller's existing tumors over ``box``; None if none."""
        mask = None
        for patch in patches:
            overlap = intersect(box, patch.box_global)
            if overlap is not None:
                mask = np.zeros(box.shape, bool) if mask is None else mask
                mask[overlap[0]] |= patch.label[overlap[1]]
        if self.existing is not None:
            block = self.existing[box.inner_global]
            if block.any():
                mask = np.zeros(box.shape, bool) if mask is None else mask
                mask[box.inner_local] |= block.astype(bool)
        return mask

    def _surely_collide(self, centres_mm: np.ndarray, shape: TumorShape) -> np.ndarray:
        """Cheap test on (N, 3) candidate centres at once: their inner sphere overlaps a placed tumor's."""
        if self.spec.allow_overlap or not len(self.placed_inner):
            return np.zeros(len(centres_mm), bool)
        inner = float(shape.semi_axes_mm.min()) * (1.0 - shape.max_wander)
        distances = np.sqrt(((centres_mm[:, None, :] - self.placed_centres[None]) ** 2).sum(axis=2))
        return np.any(distances < inner + self.placed_inner, axis=1)

    def _distances(self, centre_mm: np.ndarray) -> np.ndarray:
        """Distances (mm) from ``centre_mm`` to the centres of the tumors placed so far."""
        return np.sqrt(((self.placed_centres - centre_mm) ** 2).sum(axis=1))

    def _collides(self, field: ShapeField, box: Box, centre_mm: np.ndarray | None = None,
                  shape: TumorShape | None = None) -> bool:
        """True when the tumor (``field`` over ``box``) comes within 1 mm of another."""
        if self.spec.allow_overlap:
            return False
        if centre_mm is not None and self.existing is None and not self.avoid and np.all(
                self._distances(centre_mm) > shape.extent_mm + self.placed_outer + 1.0):
            return False  # far from every tumor placed so far
        others = self._others_label(box)
        if others is None:
            return False
        return bool(np.any((field.signed_mm <= 1.0) & others))

    def _place_clicked(self, shape: TumorShape, kind: str, point: np.ndarray, reach: float):
        context = self.context
        centre = context.ct.ras_to_ijk_points(point)
        if not context.contains_ijk(centre):
            context.require_not_empty()
            raise InputError(
                f"The point R {point[0]:.1f}, A {point[1]:.1f}, S {point[2]:.1f} mm is outside the {context.organ}. "
                f"Click inside the {context.organ} segment (in a slice view), or check that the right segment "
                "is chosen."
            )
        box, field = evaluate_at(context, shape, centre, pad_mm(shape, self.margin, reach))
        liver = liver_in_box(context, box)
        if not fits(field, liver, fit_threshold_mm(shape, self.margin)):
            depth = self._depth_at(liver, box, centre)
            largest = max(0.0, 2.0 * (depth - self.margin) / (1.0 + shape.max_wander))
            raise InputError(
                f"A {kind} tumor (about {2 * shape.mean_radius_mm:.0f} mm across) is too large for the {context.organ} "
                f"at this point: the {context.organ} surface is only {depth:.0f} mm away. Click deeper inside the "
                f"{context.organ}, or "
                f"choose a smaller tumor (at most about {largest:.0f} mm across fits here)."
            )
        if self._collides(field, box):
            raise InputError("A tumor is already there. Click elsewhere, or allow overlapping tumors.")
        return centre, box, field, 1.0

    def _depth_at(self, liver: np.ndarray, box: Box, centre: np.ndarray) -> float:
        depth = ndimage.distance_transform_edt(np.pad(liver, 1), sampling=self.spacing[::-1])[1:-1, 1:-1, 1:-1]
        local = np.clip(np.rint(centre).astype(int) - box.start, 0, np.array(box.shape[::-1]) - 1)
        return float(depth[local[2], local[1], local[0]])

    def _place_random(self, shape: TumorShape, rng: np.random.Generator, reach: float):
        """Random location deep enough, in the liver, off other tumors and vessels; shrink if none.

        Candidates are screened on a grid of about 1.4 mm (every second voxel of a 0.7 mm scan);
        the chosen one is then checked at full resolution.
        """
        context = self.context
        margin = self.margin
        ijk_to_ras = context.ct.ijk_to_ras
        stride = np.maximum(1, np.rint(SCREEN_MM / context.spacing)).astype(int)  # (i, j, k)
        scale = 1.0
        for _attempt in range(12):
            if shape.mean_radius_mm < 1.5:
                break
            deep_enough = float(shape.semi_axes_mm.min()) * (1.0 - shape.max_wander) + margin
            likely = shape.mean_radius_mm * (1.0 + 0.5 * shape.max_wander) + margin
            available = context.max_depth_mm()
            if likely > available:  # too big for this liver anywhere: shrink to what it allows
                factor = max(0.3, 0.95 * (available - margin) / (likely - margin))
                shape, scale = shape.scaled(factor), scale * factor
                continue
            threshold = fit_threshold_mm(shape, margin)
            radius = pad_mm(shape, margin, reach)
            # the shape, evaluated once on a coarse grid around an integer voxel, moves over candidates;
            # its box only needs to hold the tumor and its surface margin (the shell is for rendering)
            surely = shape.extent_mm + threshold * shape.semi_axes_mm.max() / shape.mean_radius_mm
            half = -(-box_half_size(context, surely) // stride)  # coarse half-size, rounded up
            coarse_matrix = ijk_to_ras.copy()
            coarse_matrix[:3, :3] = ijk_to_ras[:3, :3] * stride
            coarse = evaluate_shape(shape, coarse_matrix, -half, tuple(int(2 * h + 1) for h in half[::-1]), np.zeros(3),
                                    with_radial=False)
            candidates = np.concatenate([context.sample_centres(rng, surely, CANDIDATES_PER_SIZE // 2),
                                         context.sample_centres(rng, deep_enough, CANDIDATES_PER_SIZE // 2)])
            pool = self._screen(candidates, shape, stride, coarse, threshold)
            for _share, _order, centre, centre_mm in sorted(pool, key=lambda item: item[:2]):
                full_box, field = evaluate_at(context, shape, centre, radius)
                if fits(field, liver_in_box(context, full_box), threshold) and not self._collides(
                        field, full_box, centre_mm, shape):
                    return centre, full_box, field, scale, shape
            shape, scale = shape.scaled(0.85), scale * 0.85
        return None  # the liver is full: no room left for this tumor (it is skipped, not forced)

    def _screen(self, candidates: np.ndarray, shape: TumorShape, stride: np.ndarray, coarse: ShapeField,
                threshold: float) -> list:
        """Candidates that pass the coarse checks, as (vessel share, order, centre, centre in mm).

        Stops at the first one with few enough vessels, or after ``VESSEL_CHECKS`` passing ones. The
        checks run in one compiled kernel on the cached liver mask and tumor occupancy.
        """
        liver, grid_start = self.context.bbox_mask()
        occupied = np.zeros((0, 0, 0), bool) if self.spec.allow_overlap else self._occupancy()
        steps = stride[::-1].astype(np.int64)
        centres = candidates[:, ::-1].astype(float)  # (k, j, i) -> (i, j, k)
        centres_mm = self.context.ct.ijk_to_ras_points(centres)
        blocked = self._surely_collide(centres_mm, shape)
        pool = []
        for candidate, centre, centre_mm, surely_blocked in zip(candidates, centres, centres_mm, blocked):
            if surely_blocked:
                continue
            ok, share = screen_candidate(coarse.signed_mm, np.float32(threshold), liver, occupied, grid_start,
                                         self.out, candidate.astype(np.int64), steps, VESSEL_MIN_EXCESS_HU)
            if not ok:
                continue
            pool.append((share, len(pool), centre, centre_mm))
            if share <= self.spec.max_vessel_fraction or len(pool) >= VESSEL_CHECKS:
                break
        return pool

    # --- rendering ---------------------------------------------------------------------------
    def _render(self, index, kind, placement, seed, tumor_rng, shape, centre, box: Box, field: ShapeField, scale):
        region = box.inner_global
        signed_full = field.signed_mm[box.inner_local]
        liver_full = self.context.mask(region)
        others_box = self._others_label(box)
        others_full = None if others_box is None else others_box[box.inner_local]
        parenchyma = parenchyma_level(self.out[region], liver_full, others_full)
        look = draw_look(tumor_rng, self.spec.appearance, parenchyma, shape.mean_radius_mm, self.spec.organ,
                         self.spec.contrast_phase)
        if look.high_pass_residual:
            look.noise_hu = self.context.scan_noise_hu()
        # only the voxels the tumor can change: its soft edge, or the reach of its mass effect
        if look.mass_effect_share > 0:
            active = field.radial[box.inner_local] < MASS_EFFECT_REACH
        else:
            active = signed_full < max(look.edge_mm, 0.5) + 0.5
        local = _bbox(active, pad=1)
        if local is None:
            return None
        sub = tuple(slice(r.start + s.start, r.start + s.stop) for r, s in zip(region, local))
        field_sub = ShapeField(signed_full[local], field.radial[box.inner_local][local])
        liver = liver_full[local]
        others = None if others_full is None else others_full[local]
        original = self.out[sub].copy()
        old = original.astype(np.float32)
        vessels = find_vessels(old, liver, parenchyma, self.spacing)
        centre_box = np.asarray(centre) - np.array([sub[2].start, sub[1].start, sub[0].start])
        protect = None
        if others is not None and look.mass_effect_share > 0:
            protect = ndimage.binary_dilation(others, iterations=3)
        new = render_tumor(tumor_rng, old, liver, vessels, field_sub, look, parenchyma, self.spacing, centre_box, protect)
        label = _one_piece(field_sub.signed_mm <= 0, centre_box) & liver
        if not label.any():  # smaller than a voxel on this grid: nothing to paint
            return None
        written = _to_dtype(new, self.out.dtype)
        self.out[sub] = written
        self._remember(TumorPatch(sub, label, original), centre, shape)
        new_values = written.astype(np.float32)
        vessels_full = np.zeros(liver_full.shape, bool)
        vessels_full[local] = vessels
        label_full = np.zeros(liver_full.shape, bool)
        label_full[local] = label
        stats = realism_stats(self.out[region], label_full, liver_full, vessels_full, signed_full, self.spacing,
                              others_full)
        look_dict = look.to_dict()
        if self.spec.appearance.duct_dilation and self.spec.organ == "pancreas":
            look_dict.update(self._dilate_duct(tumor_rng, centre))
        voxel_ml = float(np.abs(np.linalg.det(self.context.ct.ijk_to_ras[:3, :3]))) / 1000.0
        voxels = int(label.sum())
        change = (new_values - old)[label]
        return TumorDescription(
            index=index, kind=kind, placement=placement, seed=seed,
            center_ras=np.round(self.context.ct.ijk_to_ras_points(centre), 2).tolist(),
            semi_axes_mm=np.round(shape.semi_axes_mm, 2).tolist(),
            axes_ras=np.round(shape.rotation.T, 4).tolist(),
            equivalent_diameter_mm=round(2.0 * (voxels * voxel_ml * 1000.0 * 3 / (4 * np.pi)) ** (1 / 3), 2),
            volume_ml=round(voxels * voxel_ml, 3), voxels=voxels,
            mean_hu_change=round(float(change.mean()) if change.size else 0.0, 2),
            parenchyma_hu=round(parenchyma.level_hu, 2),
            tumor_mean_hu=round(float(new_values[label].mean()) if voxels else float("nan"), 2),
            scaled_to_fit=round(scale, 3), box_ijk=box_ijk(self.patches[-1].box_global), look=look_dict,
            realism=stats.to_dict(),
        )

    def _dilate_duct(self, rng: np.random.Generator, centre: np.ndarray) -> dict:
        """Paint the dilated duct upstream of the last tumor; its patch grows to hold the duct (one undo)."""
        from medsynth.tumor.duct import centre_line, draw_duct, duct_box, render_duct

        context = self.context
        if self._centre_line is None:
            mask, start = context.bbox_mask()
            self._centre_line = centre_line(mask, start, context.ct.ijk_to_ras, np.random.default_rng(0))
        line, axis = self._centre_line
        duct = draw_duct(rng, line, axis, context.ct.ijk_to_ras_points(centre))
        if duct is None:
            return {"duct_diameter_mm": 0.0, "duct_length_mm": 0.0}
        box = duct_box(duct, context.ct.ras_to_ijk, self.out.shape, voxels_per_mm=context.voxels_per_mm)
        patch = self.patches[-1]
        union = tuple(slice(min(a.start, b.start), max(a.stop, b.stop)) for a, b in zip(box, patch.box_global))
        original = self.out[union].copy()
        inner = tuple(slice(b.start - u.start, b.stop - u.start) for b, u in zip(patch.box_global, union))
        original[inner] = patch.original
        label = np.zeros(original.shape, bool)
        label[inner] = patch.label
        tumors = self._others_label(region_box(box))
        keep_out = np.zeros(tuple(b.stop - b.start for b in box), bool) if tumors is None else tumors
        new, lumen = render_duct(self.out[box], context.mask(box), keep_out, duct, box, context.ct.ijk_to_ras,
                                 self.spacing)
        self.out[box] = _to_dtype(new, self.out.dtype)
        self.patches[-1] = TumorPatch(union, label, original)
        return {"duct_diameter_mm": round(2 * duct.radius_mm, 2), "duct_length_mm": round(duct.length_mm, 1),
                "duct_fluid_hu": round(duct.fluid_hu, 1), "duct_voxels": int(lumen.sum())}

    def _remember(self, patch: TumorPatch, centre: np.ndarray, shape: TumorShape) -> None:
        """Keep a painted tumor for undo and for the collision checks of the next ones."""
        self.patches.append(patch)
        self.placed_centres = np.vstack([self.placed_centres, self.context.ct.ijk_to_ras_points(centre)[None]])
        self.placed_inner = np.append(self.placed_inner, float(shape.semi_axes_mm.min()) * (1.0 - shape.max_wander))
        self.placed_outer = np.append(self.placed_outer, shape.extent_mm)
        if self._occupied is not None:
            overlap = intersect(region_box(patch.box_global), self.context.bounding_box())
            if overlap is not None:
                self._occupied[overlap[1]] |= patch.label[overlap[0]]


def _require_room(context: OrganContext, diameter_mm: float, margin_mm: float) -> None:
    """InputError when a tumor of ``diameter_mm`` cannot fit anywhere in the organ (free sizes never shrink)."""
    margin = max(margin_mm, 1.05 * float(context.spacing.max()))
    available = context.max_depth_mm()
    if diameter_mm / 2.0 + margin > available:
        largest = max(0.0, 2.0 * (available - margin))
        raise InputError(
            f"The {context.organ} is too small for a {diameter_mm:.0f} mm tumor: its deepest point is only "
            f"{available:.0f} mm from its surface. Choose at most about {largest:.0f} mm, or a tumor type "
            "(types shrink to fit)."
        )


def _bbox(mask: np.ndarray, pad: int = 0) -> tuple[slice, slice, slice] | None:
    """Slices of the smallest box holding ``mask``'s voxels, grown by ``pad`` (clipped)."""
    low, high = mask_bounds(mask)
    if high[0] == 0:
        return None
    return tuple(slice(max(int(lo) - pad, 0), min(int(hi) + pad, n)) for lo, hi, n in zip(low, high, mask.shape))


def box_ijk(region: tuple[slice, slice, slice]) -> list[list[int]]:
    return [[region[2].start, region[1].start, region[0].start],
            [region[2].stop - 1, region[1].stop - 1, region[0].stop - 1]]


def _one_piece(mask: np.ndarray, centre_box: np.ndarray) -> np.ndarray:
    """The connected piece of ``mask`` holding the centre (the shape is star-shaped: normally all of it)."""
    mask = np.ascontiguousarray(mask)
    c = np.clip(np.rint(centre_box).astype(int), 0, np.array(mask.shape[::-1]) - 1)
    piece, size = piece_at(mask, c[2], c[1], c[0])
    if size:
        return mask if size == np.count_nonzero(mask) else piece
    labelled, count = ndimage.label(mask)  # centre not in the shape (a voxel-thin case): keep the largest piece
    if count <= 1:
        return mask
    return labelled == int(np.argmax(np.bincount(labelled.ravel())[1:])) + 1


def _to_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype, copy=False)


def _output_labels(context: OrganContext, liver, patches: list[TumorPatch], mode: str, tumor_value: int,
                   liver_value: int, existing: np.ndarray | None) -> LabelMap | None:
    if mode == "none":
        return None
    ct = context.ct
    if mode == "add" and isinstance(liver, LabelMap):
        array = liver.array.copy()
        table = LabelTable(dict(liver.table.names))
    else:
        array = np.zeros(ct.array.shape, np.uint8 if max(tumor_value, liver_value) < 256 else np.int32)
        array[context.mask((slice(None),) * 3)] = liver_value
        table = LabelTable({liver_value: context.organ})
    if existing is not None:
        array[existing.astype(bool)] = tumor_value
    for patch in patches:
        array[patch.box_global][patch.label] = tumor_value
    table.names[tumor_value] = f"{context.organ} tumor"
    return LabelMap(array, ct.ijk_to_ras.copy(), table=table)


def save_descriptions(result: TumorResult, path: str | Path, **extra) -> Path:
    """Write tumors.json atomically."""
    from medsynth.io.atomic import atomic_output

    path = Path(path)
    with atomic_output(path) as temp:
        temp.write_text(result.descriptions_json(**extra))
    return path
