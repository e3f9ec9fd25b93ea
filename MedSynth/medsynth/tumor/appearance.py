"""Tumor appearance: intensity relative to the parenchyma, texture, soft edge, capsule, necrosis,
mass effect and vessel suppression, all computed in the tumor's box.

The scan's own noise is kept: inside the tumor the CT becomes ``tumor signal + (old - parenchyma)``,
so the tumor carries the same grain as the rest of the scan. Vessel voxels, whose excess over the
parenchyma is not noise, get synthetic noise of the parenchyma's strength instead (unless kept).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy import ndimage

from medsynth.tumor.profiles import LIVER_PHASE_FACTORS, lesion_name, profile
from medsynth.tumor.realism import mask_bounds
from medsynth.tumor.shape import ShapeField
from medsynth.tumor.spec import Appearance
from medsynth.tumor.texture import tumor_texture
from medsynth.tumor.vessels import Parenchyma

#: Mass effect reaches this far, in units of the tumor's radius (1 = its outline).
MASS_EFFECT_REACH = 1.75


@dataclass
class TumorLook:
    """The appearance drawn for one tumor (saved in its description)."""

    density: str
    contrast_hu: float  # signed change of the tumor's mean from the parenchyma
    texture_std_hu: float
    texture_coarse_mm: float
    texture_fine_mm: float
    texture_fine_share: float
    edge_mm: float
    capsule_hu: float  # 0: no capsule; else rim brightness above the parenchyma
    capsule_mm: float
    necrosis_radius: float  # 0: no necrotic core; else its radius as a share of the tumor's
    necrosis_hu: float
    mass_effect_share: float  # 0: none; else outward push at the outline, as a share of the radius
    keep_vessels: bool
    organ: str = "liver"
    lesion: str = "lesion"
    phase: str = "portal_venous"
    high_pass_residual: bool = False  # noise of the scan's grain instead of the organ's own structure
    noise_hu: float = 0.0  # the scan's noise (OrganContext.scan_noise_hu) when high_pass_residual

    def to_dict(self) -> dict:
        values = ((item.name, getattr(self, item.name)) for item in fields(self))  # flat: no deep copy
        return {key: (round(value, 3) if isinstance(value, float) else value) for key, value in values}


def draw_look(rng: np.random.Generator, options: Appearance, parenchyma: Parenchyma, radius_mm: float,
              organ: str = "liver", phase: str = "portal_venous") -> TumorLook:
    """Draw one tumor's appearance for its organ, lesion type and contrast phase (profiles.py)."""
    lesion_profile = profile(organ, options.lesion, phase)
    if lesion_profile is None:
        return _draw_liver_look(rng, options, parenchyma, radius_mm, phase)
    level = parenchyma.level_hu
    if lesion_profile.absolute_hu is not None:  # fluid: near water whatever the parenchyma
        contrast = rng.uniform(*lesion_profile.absolute_hu) - level
    elif options.contrast_hu is not None:
        contrast = {"hypo": -1.0, "iso": 0.0, "hyper": 1.0}[options.density] * options.contrast_hu
    else:
        contrast = rng.uniform(*lesion_profile.contrast_hu)
    if lesion_profile.absolute_hu is None:
        contrast = max(contrast, min(5.0 - level, 0.0))  # solid tissue stays above water
    texture = options.texture_std_hu
    if texture is None:
        texture = rng.uniform(*lesion_profile.texture_std_hu)
    edge = options.edge_mm if options.edge_mm is not None else rng.uniform(*lesion_profile.edge_mm)
    necrosis_radius = necrosis_hu = 0.0
    wants_necrosis = options.necrosis or rng.random() < lesion_profile.necrosis_chance
    if wants_necrosis and radius_mm >= 8.0 and lesion_profile.absolute_hu is None:
        necrosis_radius = rng.uniform(0.3, 0.55)
        necrosis_hu = rng.uniform(5.0, 20.0)
    capsule_hu = capsule_mm = 0.0
    if options.capsule:
        capsule_hu = rng.uniform(0.12, 0.3) * max(level, 40.0) + rng.uniform(5.0, 15.0)
        capsule_mm = rng.uniform(0.8, 1.5)
    mass_share = rng.uniform(0.08, 0.18) if options.mass_effect else 0.0
    density = "hypo" if contrast < -8.0 else ("hyper" if contrast > 8.0 else "iso")
    return TumorLook(
        density=density, contrast_hu=float(contrast), texture_std_hu=float(texture),
        # blotches scale with the tumor: a small renal or pancreatic tumor is heterogeneous too
        texture_coarse_mm=float(np.clip(rng.uniform(0.3, 0.6) * radius_mm, 2.0, 8.0)),
        texture_fine_mm=float(rng.uniform(1.0, 2.0)),
        texture_fine_share=float(rng.uniform(0.3, 0.6)), edge_mm=float(edge), capsule_hu=float(capsule_hu),
        capsule_mm=float(capsule_mm), necrosis_radius=float(necrosis_radius), necrosis_hu=float(necrosis_hu),
        mass_effect_share=float(mass_share), keep_vessels=bool(options.keep_vessels), organ=organ,
        lesion=lesion_name(organ, options.lesion), phase=phase, high_pass_residual=True,
    )


def _draw_liver_look(rng: np.random.Generator, options: Appearance, parenchyma: Parenchyma, radius_mm: float,
                     phase: str) -> TumorLook:
    """The liver's rules: every default scales with this liver's own parenchyma HU, then with the phase."""
    level = parenchyma.level_hu
    scale = max(level, 40.0)
    hypo_factor, hyper_factor = LIVER_PHASE_FACTORS[phase]
    magnitude = options.contrast_hu
    if options.density == "hypo":
        if magnitude is None:
            magnitude = (rng.uniform(0.25, 0.6) * scale + rng.uniform(5.0, 15.0)) * hypo_factor
        contrast = -min(magnitude, max(level - 5.0, 0.0))  # stay above water unless necrotic
    elif options.density == "hyper":
        contrast = magnitude if magnitude is not None else (
            rng.uniform(0.2, 0.5) * scale + rng.uniform(5.0, 15.0)) * hyper_factor
    else:
        contrast = magnitude if magnitude is not None else rng.uniform(-8.0, 8.0)
    texture = options.texture_std_hu
    if texture is None:
        texture = rng.uniform(6.0, 16.0) + 0.1 * abs(contrast)
    edge = options.edge_mm if options.edge_mm is not None else rng.uniform(0.6, 1.6)
    capsule_hu = capsule_mm = 0.0
    if options.capsule:
        capsule_hu = rng.uniform(0.12, 0.3) * scale + rng.uniform(5.0, 15.0)
        capsule_mm = rng.uniform(0.8, 1.5)
    necrosis_radius = necrosis_hu = 0.0
    if options.necrosis and radius_mm >= 8.0:
        necrosis_radius = rng.uniform(0.35, 0.6)
        necrosis_hu = rng.uniform(5.0, 20.0)
    mass_share = rng.uniform(0.08, 0.18) if options.mass_effect else 0.0
    return TumorLook(
        density=options.density, contrast_hu=float(contrast), texture_std_hu=float(texture),
        texture_coarse_mm=float(rng.uniform(5.0, 9.0)), texture_fine_mm=float(rng.uniform(1.5, 3.0)),
        texture_fine_share=float(rng.uniform(0.2, 0.5)), edge_mm=float(edge), capsule_hu=float(capsule_hu),
        capsule_mm=float(capsule_mm), necrosis_radius=float(necrosis_radius), necrosis_hu=float(necrosis_hu),
        mass_effect_share=float(mass_share), keep_vessels=bool(options.keep_vessels), phase=phase,
    )


def scan_like_noise(rng: np.random.Generator, where: np.ndarray, spacing_ijk: np.ndarray, std_hu: float) -> np.ndarray:
    """Noise for the voxels ``where``: slightly correlated in-plane like a CT's, with the parenchyma's SD.

    White noise would look like salt and pepper next to the scan's own, smoother grain.
    """
    low, high = mask_bounds(where)  # the voxels' box, without listing every voxel
    box = tuple(slice(int(lo), int(hi)) for lo, hi in zip(low, high))
    field = rng.standard_normal(tuple(b.stop - b.start for b in box), dtype=np.float32)
    sigma = [0.0 if spacing_ijk[2 - axis] > 1.5 else 0.6 / spacing_ijk[2 - axis] for axis in range(3)]
    field = ndimage.gaussian_filter(field, sigma, truncate=2.5)
    field *= np.float32(std_hu / max(float(field.std()), 1e-6))
    return field[where[box]]


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, a C1 ramp between (float32, in place where possible)."""
    x = np.clip(x, 0.0, 1.0, out=x)
    return x * x * (np.float32(3.0) - np.float32(2.0) * x)


def mass_effect_warp(old: np.ndarray, vessels: np.ndarray, liver: np.ndarray, field: ShapeField,
                     centre_box: np.ndarray, share: float, spacing_ijk: np.ndarray,
                     protect: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Push the content around the tumor outward: each voxel takes the value from nearer the centre."""
    rho = field.radial
    zone = liver & (rho < MASS_EFFECT_REACH)
    if protect is not None:
        zone &= ~protect
    k, j, i = np.nonzero(zone)
    r = np.maximum(rho[k, j, i], 1e-3)
    taper = np.clip((MASS_EFFECT_REACH - r) / (MASS_EFFECT_REACH - 1.0), 0.0, 1.0)
    shift = np.where(r >= 1.0, share / (r * r) * taper * taper * (3 - 2 * taper), share * r)
    # fade near the liver surface, so the liver's outline stays where it is
    sigma = [3.0 / spacing_ijk[2 - axis] for axis in range(3)]
    fade = ndimage.gaussian_filter(liver.astype(np.float32), sigma, truncate=2.0)[k, j, i]
    shift *= np.clip(2.0 * fade - 1.0, 0.0, 1.0)
    factor = 1.0 - shift / r
    coords = np.stack([centre_box[2] + (k - centre_box[2]) * factor,
                       centre_box[1] + (j - centre_box[1]) * factor,
                       centre_box[0] + (i - centre_box[0]) * factor])
    warped = old.copy()
    warped[k, j, i] = ndimage.map_coordinates(old, coords, order=1, mode="nearest")
    moved_vessels = vessels.copy()
    moved_vessels[k, j, i] = ndimage.map_coordinates(vessels.astype(np.uint8), coords, order=0, mode="nearest") > 0
    return warped, moved_vessels & liver


def render_tumor(rng: np.random.Generator, old: np.ndarray, liver: np.ndarray, vessels: np.ndarray,
                 field: ShapeField, look: TumorLook, parenchyma: Parenchyma, spacing_ijk: np.ndarray,
                 centre_box: np.ndarray, protect: np.ndarray | None = None) -> np.ndarray:
    """New float32 HU for the box (``old`` is not modified)."""
    old = old.astype(np.float32, copy=False)
    if look.mass_effect_share > 0:
        old, vessels = mass_effect_warp(old, vessels, liver, field, centre_box, look.mass_effect_share,
                                        spacing_ijk, protect)
    level = np.float32(parenchyma.level_hu)
    # tumor signal relative to the parenchyma: mean change plus heterogeneity
    signal = tumor_texture(rng, old.shape, spacing_ijk, look.texture_coarse_mm, look.texture_fine_mm,
                           look.texture_fine_share)
    signal *= np.float32(look.texture_std_hu)
    signal += np.float32(look.contrast_hu)
    if look.necrosis_radius > 0:
        core = smoothstep((np.float32(look.necrosis_radius) - field.radial) / np.float32(0.12))
        signal += core * (np.float32(look.necrosis_hu) - level - signal * np.float32(0.7))
    if look.capsule_hu > 0:
        rim = np.exp(-0.5 * ((field.signed_mm + np.float32(look.capsule_mm)) / np.float32(look.capsule_mm)) ** 2)
        signal += rim.astype(np.float32) * (np.float32(look.capsule_hu) - signal)
    # residual: the scan's own noise (vessels replaced by noise of the parenchyma's strength)
    if look.high_pass_residual:  # kidney cortex, medulla and hilum, pancreatic lobules: structure, not grain
        noise_hu = look.noise_hu if look.noise_hu > 0 else parenchyma.noise_hu
        residual = scan_like_noise(rng, np.ones(old.shape, bool), spacing_ijk, noise_hu).reshape(old.shape)
    else:
        residual = old - level
    if not look.high_pass_residual and not look.keep_vessels and vessels.any():
        residual[vessels] = scan_like_noise(rng, vessels, spacing_ijk, parenchyma.noise_hu)
    weight = smoothstep((np.float32(look.edge_mm) - field.signed_mm) / np.float32(2.0 * look.edge_mm))
    weight *= liver
    # new = old + w * (level + signal + residual - old)
    signal += residual
    signal += level
    signal -= old
    signal *= weight
    signal += old
    return signal
