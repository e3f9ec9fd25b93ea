"""Physically based DRRs (DeepDRR's physics), fast on CPUs and on NVIDIA GPUs.

``project(ct, carm_or_poses, ...)`` is the entry point; ``prepare(ct, materials)`` packs a CT
once for many poses (live sliders). Physics: ``density`` (HU -> g/cm^3), ``materials`` (NIST
attenuation, HU thresholds or label maps), ``spectra`` (SpekPy tables), ``noise``, ``scatter``;
``display`` is the explicit step to 8-bit pictures; ``writers`` saves NIfTI, PNG, DICOM and JSON.
"""

from medsynth.drr.materials import MATERIALS, HUThresholds, LabelMaterials, Material, material
from medsynth.drr.prepare import PreparedVolume, prepare
from medsynth.drr.projector import OUTPUTS, Projection, choose_device, detector_volume, polychromatic, project, warm_up
from medsynth.drr.scatter import ScatterModel
from medsynth.drr.spectra import Spectrum, spectrum, spectrum_names

__all__ = [
    "MATERIALS",
    "OUTPUTS",
    "HUThresholds",
    "LabelMaterials",
    "Material",
    "PreparedVolume",
    "Projection",
    "ScatterModel",
    "Spectrum",
    "choose_device",
    "detector_volume",
    "material",
    "polychromatic",
    "prepare",
    "project",
    "spectrum",
    "spectrum_names",
    "warm_up",
]
