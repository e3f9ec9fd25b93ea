"""Regenerate the medsynth package's file lists in MedSynth/CMakeLists.txt.

Slicer installs only what CMake lists; this keeps the list exact. Testing/test_structure.py
fails when it is stale: run `python scripts/update_cmake_lists.py` after adding a file.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CMAKE = ROOT / "MedSynth" / "CMakeLists.txt"
PACKAGE = ROOT / "MedSynth" / "medsynth"
RESOURCE_SUFFIXES = (".json", ".csv", ".npz", ".yaml", ".yml", ".pt", ".txt", ".md", ".html")


def package_files() -> tuple[list[str], list[str]]:
    """(python scripts, resources) of the medsynth package, relative to MedSynth/."""
    scripts, resources = [], []
    for path in sorted(PACKAGE.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        relative = path.relative_to(CMAKE.parent).as_posix()
        if path.suffix == ".py":
            scripts.append(relative)
        elif path.name.endswith(RESOURCE_SUFFIXES):
            resources.append(relative)
    return scripts, resources


def render(text: str) -> str:
    scripts, resources = package_files()
    for marker, files in (("scripts", scripts), ("resources", resources)):
        pattern = re.compile(
            rf"(  # BEGIN medsynth package {marker}\n).*?(  # END medsynth package {marker})", re.DOTALL
        )
        block = "".join(f"  {name}\n" for name in files)
        text = pattern.sub(lambda match: match.group(1) + block + match.group(2), text)
    return text


def main() -> int:
    text = CMAKE.read_text()
    updated = render(text)
    if "--check" in sys.argv:
        return 0 if updated == text else 1
    CMAKE.write_text(updated)
    print(f"updated {CMAKE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
