"""The dataset's item list: case x variant x view, each with its pose and its own seeds.

Everything random about an item derives from (recipe seed, case, variant, view) through
``medsynth.jobs.seeds``, never from a generator shared between items: a resumed, reordered or
distributed run draws exactly what an uninterrupted local run draws. Poses depend on (case,
view) only, so a case's tumor variants are seen from the same poses (paired images).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from medsynth.dataset.recipe import Recipe
from medsynth.drr.parameters import CArmPose
from medsynth.jobs.seeds import item_rng, item_seed


def variant_label(variant: int | None) -> str:
    """Folder name of a variant: "original" for the CT as given, "variant_000" for tumor variant 0."""
    return "original" if variant is None else f"variant_{variant:03d}"


@dataclass(frozen=True)
class PlanItem:
    """One image to make. ``pose``'s isocenter is an offset (mm) from the CT's centre."""

    case: str
    variant: int | None
    view: int
    pose: CArmPose
    seed: int  # the view's noise seed
    tumor_seed: int | None  # the variant's tumor seed (None: no tumor)
    isocenter_absolute: bool = False  # an explicit pose's isocenter (RAS mm), not an offset
    pose_name: str = ""  # an explicit pose's name

    @property
    def group(self) -> tuple[str, int | None]:
        """What a worker prepares once and projects many views of: (case, variant)."""
        return (self.case, self.variant)

    @property
    def key(self) -> str:
        """The item's folder, relative to the dataset root: case/variant/view_NNNN."""
        return f"{self.case}/{variant_label(self.variant)}/view_{self.view:04d}"


def tumor_seed(recipe: Recipe, case: str, variant: int | None) -> int | None:
    return None if variant is None else item_seed(recipe.seed, case, variant_label(variant), "tumor")


def _grid(count: int, low: float, high: float) -> list[float]:
    return [float(v) for v in np.linspace(low, high, count)] if count > 1 else [0.5 * (low + high)]


def explicit_poses(recipe: Recipe) -> list[tuple[CArmPose, bool, str]]:
    """(pose, isocenter is absolute, name) of the recipe's ``drr.poses``."""
    base = recipe.drr.parameters.pose
    poses = []
    for name, values in recipe.drr.poses:
        absolute = values["isocenter"] != "center"
        r, a, s = values["isocenter"] if absolute else (0.0, 0.0, 0.0)
        poses.append((dataclasses.replace(base, primary_angle=values["primary"], secondary_angle=values["secondary"],
                                          sid=values.get("sid", base.sid), sod=values.get("sod", base.sod),
                                          isocenter_r=float(r), isocenter_a=float(a), isocenter_s=float(s)),
                      absolute, name))
    return poses


def draw_poses(recipe: Recipe, case: str) -> list[CArmPose]:
    """The K poses of a case: random draws within the ranges, or an even grid over them."""
    stage = recipe.drr
    base = stage.parameters.pose
    count = stage.views
    if stage.sampling == "grid":
        varied = [stage.primary[0] != stage.primary[1], stage.secondary[0] != stage.secondary[1]]
        if all(varied):
            columns = math.ceil(math.sqrt(count))
            rows = math.ceil(count / columns)
            angles = [(a, b) for b in _grid(rows, *stage.secondary) for a in _grid(columns, *stage.primary)][:count]
        elif varied[1]:
            angles = [(stage.primary[0], b) for b in _grid(count, *stage.secondary)]
        else:
            angles = [(a, stage.secondary[0]) for a in _grid(count, *stage.primary)]
    poses = []
    for view in range(count):
        rng = item_rng(recipe.seed, case, "pose", view)
        if stage.sampling == "grid":
            primary, secondary = angles[view]
        else:
            primary, secondary = rng.uniform(*stage.primary), rng.uniform(*stage.secondary)
        sid = base.sid if stage.sid is None else float(rng.uniform(*stage.sid))
        jitter = rng.uniform(-1.0, 1.0, 3) * stage.isocenter_jitter_mm
        sod = min(base.sod, sid - 1.0)
        poses.append(dataclasses.replace(base, primary_angle=float(primary), secondary_angle=float(secondary),
                                         sid=float(sid), sod=float(sod), isocenter_r=float(jitter[0]),
                                         isocenter_a=float(jitter[1]), isocenter_s=float(jitter[2])))
    return poses


def plan(recipe: Recipe) -> list[PlanItem]:
    """Every item of the recipe, grouped by (case, variant) in recipe order."""
    items = []
    for case in recipe.cases:
        poses = explicit_poses(recipe) if recipe.drr.poses else [(p, False, "") for p in draw_poses(recipe, case.name)]
        for variant in recipe.variants():
            label = variant_label(variant)
            seeds = [item_seed(recipe.seed, case.name, label, "view", view) for view in range(len(poses))]
            items += [PlanItem(case.name, variant, view, pose, seed, tumor_seed(recipe, case.name, variant), absolute, name)
                      for view, ((pose, absolute, name), seed) in enumerate(zip(poses, seeds))]
    return items
