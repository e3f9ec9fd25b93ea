"""``medsynth demo [--out DIR]``: run every demo step on real fetched scans, write pictures."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from medsynth.jobs.progress_bar import progress_bar
from medsynth.demo import DEMO_STEPS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="show MedSynth's main jobs on real scans (pictures in --out)")
    parser.add_argument("--out", default="demo_output", help="folder for the pictures (default: demo_output)")
    parser.add_argument("--only", nargs="*", help="run only these steps (e.g. foundation drr)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for module_name in DEMO_STEPS:
        short = module_name.rsplit(".", 1)[1]
        if args.only and short not in args.only:
            continue
        step = importlib.import_module(module_name)
        with progress_bar(f"demo {short}") as progress:
            written += step.run(out_dir, progress)
    print("Pictures written:")
    for path in written:
        print(f"  {path}")
    return 0
