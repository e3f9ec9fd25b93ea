"""Shared fixtures: the real sample scans, fetched once through ``medsynth.data``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

#: Debian's Chromium, which Playwright drives headless (Playwright's own browser download fails here).
CHROMIUM = os.environ.get("MEDSYNTH_CHROMIUM", "/usr/bin/chromium")
#: Flags that keep Chromium from reaching for the network it does not have (and run as root in CI).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def lidc_dir() -> Path:
    from medsynth.data import fetch

    return fetch("lidc")


@pytest.fixture(scope="session")
def lidc_dicom_dir() -> Path:
    from medsynth.data import fetch

    return fetch("lidc_dicom") / "series"


@pytest.fixture(scope="session")
def totalseg_dir() -> Path:
    from medsynth.data import fetch

    return fetch("totalseg")


@pytest.fixture(scope="session")
def pydicom_dir() -> Path:
    from medsynth.data import fetch

    return fetch("pydicom")


@pytest.fixture(scope="session")
def lidc_ct(lidc_dir):
    """LIDC-IDRI-0001 as a Volume in HU (NIfTI; voxel-identical to the DICOM series)."""
    from medsynth.io import read_volume

    return read_volume(lidc_dir / "ct.nii.gz", modality="CT")


@pytest.fixture(scope="session")
def lidc_labels(lidc_dir):
    """Its TotalSegmentator label map with names (liver = 5)."""
    from medsynth.io import read_labelmap

    return read_labelmap(lidc_dir / "labels.nii.gz", lidc_dir / "structures.csv")


@pytest.fixture(scope="session")
def mrml_scene():
    """The headless MRML scene (slicer-core), shared by the bridge and module-logic tests."""
    from medsynth.mrml import get_scene

    return get_scene()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's launch settings, pointed at Debian's Chromium."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True, "args": CHROMIUM_ARGS}


def pytest_sessionstart(session):
    """Fill numba's cache from a child process before any test runs a kernel.

    Freshly compiled and cache-loaded kernels can differ in the last float bits; tests that compare
    files written by several processes (resumed and distributed dataset runs) need every process,
    this one included, to run the cached code.
    """
    from medsynth.jobs.kernel_cache import warm_kernels_in_child

    warm_kernels_in_child()
