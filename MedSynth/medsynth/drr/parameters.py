"""The DRR job's parameters, defined once for the module, CLI, batch script, recipes and web app.

Defaults come from the C-arm presets (medsynth/geometry/presets.json): the mobile C-arm's SID and
SOD, its field of view read out at 384 x 384 pixels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated

from medsynth.errors import InputError
from medsynth.geometry import CArm, load_preset, preset_names
from medsynth.geometry.carm import PATIENT_POSITIONS
from medsynth.parameters import OneOf, Range

#: What the output node shows: name -> (label, Projection images, projector outputs needed).
OUTPUT_KINDS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "radiograph": ("Radiograph (detected intensity I/I0)", ("intensity",), ("intensity", "log")),
    "line_integral": ("-log line integral", ("log",), ("intensity", "log")),
    "dual_energy": ("Dual-energy pair (-log at the low and high kV)", ("low_log", "high_log"),
                    ("intensity", "log", "dual_energy")),
    "bone": ("Bone only (-log)", ("bone_log",), ("intensity", "log", "materials")),
    "soft_tissue": ("Soft tissue only (-log)", ("soft_tissue_log",), ("intensity", "log", "materials")),
}
#: Renderers: MedSynth's own projector, or DeepDRR itself in its own environment.
BACKENDS = ("medsynth", "deepdrr")
#: Physics models: DeepDRR's (materials, spectrum), or plastimatch's monochromatic mu(HU).
PHYSICS_MODELS = ("deepdrr", "plastimatch")
DEVICES = ("auto", "cpu", "cuda")
#: Detector rows of the default read-out (the preset's field of view is kept).
DEFAULT_DETECTOR_PIXELS = 384
#: Tube voltages of the spectra shipped with DeepDRR's filtration.
NAMED_KV = (60.0, 90.0, 120.0)

_MOBILE = load_preset("mobile")
_MOBILE_SPACING = _MOBILE.detector_size_mm[0] / DEFAULT_DETECTOR_PIXELS


@dataclass
class CArmPose:
    """Where the C-arm stands: gantry angles in degrees, distances in mm, isocenter in RAS mm."""

    primary_angle: Annotated[float, Range(-190.0, 190.0), "LAO + / RAO -, degrees"] = 0.0
    secondary_angle: Annotated[float, Range(-95.0, 95.0), "CRAN + / CAUD -, degrees"] = 0.0
    sid: Annotated[float, Range(500.0, 1500.0), "source-image distance, mm"] = _MOBILE.sid
    sod: Annotated[float, Range(200.0, 1400.0), "source-isocenter distance, mm"] = _MOBILE.sod
    isocenter_r: Annotated[float, "isocenter R, mm"] = 0.0
    isocenter_a: Annotated[float, "isocenter A, mm"] = 0.0
    isocenter_s: Annotated[float, "isocenter S, mm"] = 0.0

    @property
    def isocenter(self) -> tuple[float, float, float]:
        return (float(self.isocenter_r), float(self.isocenter_a), float(self.isocenter_s))

    def moved_to(self, isocenter) -> "CArmPose":
        """This pose aimed at another isocenter (RAS mm)."""
        r, a, s = (float(v) for v in isocenter)
        return dataclasses.replace(self, isocenter_r=r, isocenter_a=a, isocenter_s=s)

    @classmethod
    def of(cls, carm: CArm) -> "CArmPose":
        r, a, s = carm.isocenter
        return cls(float(carm.primary_angle), float(carm.secondary_angle), float(carm.sid), float(carm.sod),
                   float(r), float(a), float(s))


@dataclass
class DRRParameters:
    """Everything about a DRR except its CT: pose, C-arm and detector, X-rays, outputs."""

    pose: CArmPose = field(default_factory=CArmPose)
    preset: Annotated[str, OneOf(preset_names()), "C-arm preset: mechanical ranges"] = "mobile"
    patient_position: Annotated[str, OneOf(PATIENT_POSITIONS), "HFS = head first supine"] = "HFS"
    detector_rows: Annotated[int, Range(8, 4096), "detector rows"] = DEFAULT_DETECTOR_PIXELS
    detector_columns: Annotated[int, Range(8, 4096), "detector columns"] = DEFAULT_DETECTOR_PIXELS
    pixel_spacing: Annotated[float, Range(0.01, 50.0), "detector pixel spacing, mm"] = round(_MOBILE_SPACING, 6)
    kv: Annotated[float, Range(40.0, 150.0), "tube voltage, kV"] = 90.0
    added_al_mm: Annotated[float, Range(0.0, 20.0), "aluminium added to the kV's own filtration, mm"] = 0.0
    cu_mm: Annotated[float, Range(0.0, 5.0), "copper filtration, mm"] = 0.0
    physics: Annotated[str, OneOf(PHYSICS_MODELS), "attenuation model"] = "deepdrr"
    materials: Annotated[str, "label -> material map for a label map, e.g. 'rib_*=bone'"] = ""
    add_noise: Annotated[bool, "Poisson noise"] = False
    photons: Annotated[int, Range(100, 100_000_000), "photons per pixel"] = 10000
    scatter: Annotated[bool, "approximate scatter"] = False
    blur_sigma: Annotated[float, Range(0.0, 20.0), "detector blur, pixels"] = 0.0
    dual_energy: Annotated[bool, "also a dual-energy pair from the same march"] = False
    low_kv: Annotated[float, Range(40.0, 150.0), "dual-energy low tube voltage, kV"] = 60.0
    high_kv: Annotated[float, Range(40.0, 150.0), "dual-energy high tube voltage, kV"] = 120.0
    material_images: Annotated[bool, "also bone-only, soft-tissue-only ... images"] = False
    output_kind: Annotated[str, OneOf(OUTPUT_KINDS), "image put in the output volume"] = "radiograph"
    preview_factor: Annotated[int, Range(1, 16), "live preview: detector binned by this factor"] = 4
    seed: Annotated[int, Range(0, 2**31 - 1), "noise seed"] = 0
    device: Annotated[str, OneOf(DEVICES), "compute device"] = "auto"
    backend: Annotated[str, OneOf(BACKENDS), "renderer"] = "medsynth"

    # --- what the engine needs ---------------------------------------------------------------
    def carm(self, pose: CArmPose | None = None) -> CArm:
        """The C-arm (the preset's mechanical ranges, this detector) at ``pose`` (default: ``self.pose``)."""
        pose = pose or self.pose
        return load_preset(self.preset).replace(
            primary_angle=float(pose.primary_angle), secondary_angle=float(pose.secondary_angle),
            sid=float(pose.sid), sod=float(pose.sod), isocenter=pose.isocenter,
            detector_rows=int(self.detector_rows), detector_columns=int(self.detector_columns),
            pixel_spacing=float(self.pixel_spacing), patient_position=self.patient_position,
        )

    def spectrum(self, kv: float | None = None):
        """The tube spectrum: DeepDRR's named spectra at 60/90/120 kV, SpekPy tables otherwise."""
        from medsynth.drr.spectra import default_al_mm, spectrum

        kv = float(self.kv if kv is None else kv)
        if kv in NAMED_KV and not self.added_al_mm and not self.cu_mm:
            return spectrum(f"{kv:g}kV")
        return spectrum(kv, al_mm=default_al_mm(kv) + float(self.added_al_mm), cu_mm=float(self.cu_mm))

    def dual_energy_spectra(self) -> tuple[str, str]:
        if self.low_kv >= self.high_kv:
            raise InputError(f"The dual-energy low voltage ({self.low_kv:g} kV) must be below the high one "
                             f"({self.high_kv:g} kV).")
        return (f"{self.low_kv:g}kV", f"{self.high_kv:g}kV")

    def outputs(self) -> tuple[str, ...]:
        """The projector outputs these parameters ask for (always the radiograph and its -log)."""
        outputs = list(OUTPUT_KINDS[self.output_kind][2])
        if self.dual_energy and "dual_energy" not in outputs:
            outputs.append("dual_energy")
        if self.material_images and "materials" not in outputs:
            outputs.append("materials")
        return tuple(outputs)

    def photons_or_none(self) -> int | None:
        return int(self.photons) if self.add_noise else None

    # --- presets -----------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, name: str, detector_pixels: int | None = DEFAULT_DETECTOR_PIXELS, **changes) -> "DRRParameters":
        """A preset's distances and field of view, read out with ``detector_pixels`` rows (None: native)."""
        return cls(**changes).with_preset(name, detector_pixels)

    def with_preset(self, name: str, detector_pixels: int | None = None) -> "DRRParameters":
        """This request moved to a preset's SID, SOD and field of view (binned to ``detector_pixels`` rows,
        default: the current rows); angles, isocenter and X-rays are kept."""
        carm = load_preset(name)
        rows, columns, spacing = carm.detector_rows, carm.detector_columns, carm.spacing_rc[0]
        pixels = self.detector_rows if detector_pixels is None else detector_pixels
        if pixels:
            factor = rows / float(pixels)
            rows, columns, spacing = int(pixels), max(1, round(columns / factor)), spacing * factor
        pose = dataclasses.replace(self.pose, sid=float(carm.sid), sod=float(carm.sod))
        return dataclasses.replace(self, preset=carm.preset or name, pose=pose, detector_rows=rows,
                                   detector_columns=columns, pixel_spacing=float(spacing))

    def replace(self, **changes) -> "DRRParameters":
        return dataclasses.replace(self, **changes)
