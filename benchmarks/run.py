"""Run every benchmarks/bench_<area>.py and assemble docs/benchmarks.md from their sections.

Each benchmark runs in its own process (so one area's threads and memory do not disturb the
next), writes docs/benchmarks/<area>.md and its pictures to bench_output/<area>/.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ROOT / "docs" / "benchmarks"
OUTPUT = ROOT / "docs" / "benchmarks.md"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def assemble() -> Path:
    parts = [
        "# MedSynth benchmarks\n",
        "Written by `make bench` (python -m benchmarks.run); each section comes from "
        "benchmarks/bench_<area>.py and is measured side by side with the peers named in its issue, "
        "in one run, on the same machine. Ratios are what matter; absolute times depend on the machine.\n",
        f"Last assembled: {datetime.date.today().isoformat()} on {machine()}.\n",
    ]
    for section in sorted(SECTIONS.glob("*.md")):
        parts.append(section.read_text().strip() + "\n")
    OUTPUT.write_text("\n".join(parts))
    return OUTPUT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("areas", nargs="*", help="run only these (e.g. drr tumor)")
    args = parser.parse_args(argv)
    scripts = sorted((ROOT / "benchmarks").glob("bench_*.py"))
    failed = []
    for script in scripts:
        area = script.stem[len("bench_"):]
        if args.areas and area not in args.areas:
            continue
        print(f"== benchmark {area}", flush=True)
        result = subprocess.run([sys.executable, "-m", f"benchmarks.{script.stem}"], cwd=ROOT)
        if result.returncode != 0:
            failed.append(area)
    print(f"wrote {assemble()}")
    if failed:
        print(f"benchmarks that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
