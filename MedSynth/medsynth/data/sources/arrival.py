"""What every source does once files have arrived: one folder layout, NIfTI, a manifest.

Layout of an output folder::

    OUT/downloads/          partial and finished archives (kept only until unpacked)
    OUT/dicom/<SeriesInstanceUID>/   the series' DICOM files
    OUT/nifti/<SeriesInstanceUID>.nii.gz
    OUT/manifest.json       what was fetched, from where, and what it became

Each step is atomic and skipped when its output exists, so re-running an interrupted command
resumes it; this is what lets a cluster job be restarted safely.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from medsynth.errors import MedSynthError
from medsynth.io.atomic import atomic_output
from medsynth.io.dicom import read_dicom_series
from medsynth.io.files import write_volume

_lock = threading.Lock()


def series_nifti(dicom_folder: Path, target: Path) -> Path:
    """Convert one downloaded series to NIfTI (skipped when done); the DICOM files are kept."""
    if not target.exists():
        write_volume(read_dicom_series(dicom_folder), target)
    return target


def convert_series(dicom_folder: Path, target: Path) -> tuple[str | None, str | None]:
    """(NIfTI path, None) or (None, why not): a series that is not a volume (one X-ray, a report) stays DICOM."""
    try:
        return str(series_nifti(dicom_folder, target)), None
    except MedSynthError as error:
        return None, str(error)


def record(out: Path, source: str, key: str, entry: dict) -> None:
    """Add ``entry`` under ``key`` to OUT/manifest.json (rewritten atomically)."""
    path = out / "manifest.json"
    with _lock:
        manifest = json.loads(path.read_text()) if path.exists() else {"items": {}}
        manifest["items"][key] = {"source": source, **entry}
        with atomic_output(path) as temporary:
            temporary.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")

