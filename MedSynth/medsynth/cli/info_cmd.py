"""``medsynth info VOLUME [--labels L --table CSV]``: what a scan is, at a glance."""

from __future__ import annotations

import argparse
import json

from medsynth.io import read_labelmap, read_volume
from medsynth.summary import describe, format_summary


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="summarise a volume (size, spacing, orientation, HU, organs)")
    parser.add_argument("volume", help="DICOM folder, NIfTI, NRRD or NumPy file")
    parser.add_argument("--labels", help="label map on the same grid")
    parser.add_argument("--table", help="label names (TotalSegmentator structures.csv)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    volume = read_volume(args.volume)
    labels = read_labelmap(args.labels, args.table) if args.labels else None
    if labels is not None:
        volume.require_same_grid(labels)
    info = describe(volume, labels)
    print(json.dumps(info, indent=2) if args.json else format_summary(info))
    return 0
