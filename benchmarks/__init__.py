"""MedSynth's benchmarks: `make bench` runs them all (python -m benchmarks.run)."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, lines: list[str]) -> None:
    """Write one benchmark's Markdown section (docs/benchmarks/<area>.md) and print it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(path.read_text())
