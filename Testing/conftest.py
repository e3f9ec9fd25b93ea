"""Shared fixtures: the real sample scans, fetched once through ``medsynth.data``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

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
