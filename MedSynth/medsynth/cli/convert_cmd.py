"""``medsynth convert SOURCE OUT_DIR``: DICOM/NRRD/NumPy -> NIfTI, a file or a whole tree."""

from __future__ import annotations

import argparse

from medsynth.jobs.progress_bar import progress_bar
from medsynth.io.convert import convert


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert DICOM series, NRRD and NumPy volumes to NIfTI (skips what is already converted)",
    )
    parser.add_argument("source", help="a file or a folder tree")
    parser.add_argument("out_dir", help="output folder (the input tree is mirrored)")
    parser.add_argument("--spacing", type=float, nargs=3, metavar=("I", "J", "K"),
                        help="voxel size in mm for NumPy inputs, which store none")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with progress_bar("convert") as progress:
        result = convert(args.source, args.out_dir, spacing=tuple(args.spacing) if args.spacing else None,
                         progress=progress)
    print(f"converted {len(result.converted)}, already there {len(result.skipped)}, failed {len(result.failed)}")
    for source, reason in result.failed.items():
        print(f"  failed: {source}: {reason}")
    return 1 if result.failed else 0
