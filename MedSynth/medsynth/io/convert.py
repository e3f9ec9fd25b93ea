"""Convert DICOM series, NRRD and NumPy volumes to NIfTI: one file or a whole folder tree.

Outputs mirror the input tree, are written atomically, and existing outputs are skipped, so an
interrupted conversion is resumed by running it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from medsynth.errors import InputError, MedSynthError
from medsynth.io.dicom import list_dicom_series, read_dicom_series
from medsynth.io.files import read_volume, write_volume
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report

CONVERTIBLE_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd", ".npy", ".npz", ".nii")


@dataclass
class ConversionTask:
    """One output NIfTI and what it is made from (a file, or one series of a DICOM folder)."""

    source: Path
    target: Path
    series_uid: str | None = None


@dataclass
class ConversionReport:
    converted: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # source -> reason


def _strip_suffix(name: str) -> str:
    for suffix in (".nii.gz", ".seg.nrrd") + CONVERTIBLE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def plan_conversion(source: str | Path, out_dir: str | Path) -> list[ConversionTask]:
    """List what converting ``source`` (a file or a folder tree) into ``out_dir`` will write."""
    source, out_dir = Path(source), Path(out_dir)
    if not source.exists():
        raise InputError(f"{source} does not exist.")
    if source.is_file():
        return [ConversionTask(source, out_dir / f"{_strip_suffix(source.name)}.nii.gz")]
    tasks: list[ConversionTask] = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        if path.name.lower().endswith(CONVERTIBLE_SUFFIXES):
            relative = path.relative_to(source).with_name(f"{_strip_suffix(path.name)}.nii.gz")
            tasks.append(ConversionTask(path, out_dir / relative))
    for folder in sorted({p.parent for p in source.rglob("*") if p.is_file() and _maybe_dicom(p)}):
        try:
            series = list_dicom_series_flat(folder)
        except MedSynthError:
            continue
        relative = folder.relative_to(source)
        base = out_dir / relative if str(relative) != "." else out_dir / source.name
        for info in series:
            suffix = "" if len(series) == 1 else f"_{info.uid[-8:]}"
            tasks.append(ConversionTask(folder, base.with_name(base.name + suffix + ".nii.gz"), info.uid))
    return tasks


def _maybe_dicom(path: Path) -> bool:
    return not path.name.lower().endswith(CONVERTIBLE_SUFFIXES + (".nii.gz", ".xml", ".json", ".txt", ".csv"))


def list_dicom_series_flat(folder: Path):
    """Series whose files lie directly in ``folder`` (sub-folders are their own series)."""
    return [s for s in list_dicom_series(folder) if all(f.parent == folder for f in s.files)]


def convert(
    source: str | Path,
    out_dir: str | Path,
    spacing: tuple[float, float, float] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ConversionReport:
    """Convert everything under ``source`` to NIfTI in ``out_dir``; failures are reported, not fatal."""
    tasks = plan_conversion(source, out_dir)
    if not tasks:
        raise InputError(f"Nothing to convert in {source}: no DICOM series, NRRD, MHA or NumPy files found.")
    result = ConversionReport()
    for index, task in enumerate(tasks):
        check_cancel(cancel)
        if task.target.exists():
            result.skipped.append(task.target)
        else:
            try:
                if task.series_uid:
                    volume = read_dicom_series(task.source, series_uid=task.series_uid)
                else:
                    volume = read_volume(task.source, spacing=spacing)
                write_volume(volume, task.target)
                result.converted.append(task.target)
            except MedSynthError as error:
                result.failed[str(task.source)] = str(error)
        report(progress, (index + 1) / len(tasks), task.target.name)
    return result
