"""``medsynth tumor CT --liver-mask M --out DIR``: synthetic liver tumors, K variants per CT.

Each variant folder holds ct.nii.gz, labels.nii.gz (0 background, 1 liver, 2 tumor),
tumors.json (one description with realism statistics per tumor) and tumors.png. An interrupted
run resumes: finished variants are skipped, the same seed gives the same variants.
"""

from __future__ import annotations

import argparse

from medsynth.jobs.progress_bar import progress_bar
from medsynth.tumor.spec import DENSITIES, KINDS, Appearance, TumorSpec


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tumor", help="paint synthetic liver tumors into a CT (dataset generation)")
    parser.add_argument("ct", help="CT in HU: a DICOM folder, NIfTI or NRRD file")
    parser.add_argument("--liver-mask", required=True, help="liver mask or multi-label segmentation on the CT's grid")
    parser.add_argument("--liver-label", default=None,
                        help="the liver's label value or name (default: 'liver' from --label-table, else 1)")
    parser.add_argument("--label-table", default=None, help="CSV naming the labels (TotalSegmentator structures.csv)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--type", dest="kind", choices=KINDS, default="mix", help="tumor type (default: mix)")
    size.add_argument("--diameter-mm", type=float, default=None, help="free tumor size in mm instead of a type")
    parser.add_argument("--count", type=int, default=None, help="tumors per variant (default: the type's range)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same variants)")
    parser.add_argument("--variants", type=int, default=1, help="variants to make from this CT (default: 1)")
    parser.add_argument("--density", choices=DENSITIES, default="hypo", help="relative to the liver (default: hypo)")
    parser.add_argument("--contrast-hu", type=float, default=None, help="|tumor - liver| in HU (default: drawn)")
    parser.add_argument("--capsule", action="store_true", help="add a brighter rim")
    parser.add_argument("--mass-effect", action="store_true", help="push the surrounding liver outward")
    parser.add_argument("--necrosis", action="store_true", help="add a necrotic core to medium and large tumors")
    parser.add_argument("--keep-vessels", action="store_true", help="leave vessels visible through tumors")
    parser.add_argument("--allow-overlap", action="store_true", help="let tumors overlap each other")
    parser.add_argument("--out", required=True, help="output folder (one sub-folder per variant)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def build_spec(args: argparse.Namespace) -> TumorSpec:
    appearance = Appearance(density=args.density, contrast_hu=args.contrast_hu, capsule=args.capsule,
                            mass_effect=args.mass_effect, necrosis=args.necrosis, keep_vessels=args.keep_vessels)
    return TumorSpec(kind=args.kind, diameter_mm=args.diameter_mm, count=args.count, appearance=appearance,
                     allow_overlap=args.allow_overlap)


def run(args: argparse.Namespace) -> int:
    from medsynth.io import read_labelmap, read_volume
    from medsynth.tumor.variants import generate_variants

    spec = build_spec(args)
    spec.validate()  # fail on bad options before reading any file
    ct = read_volume(args.ct, modality="CT")
    liver = read_labelmap(args.liver_mask, args.label_table)
    label = args.liver_label
    if label is not None and str(label).lstrip("-").isdigit():
        label = int(label)
    with progress_bar("tumor variants", enabled=not args.quiet) as progress:
        made, skipped = generate_variants(ct, liver, spec, args.seed, args.variants, args.out,
                                          liver_label=label, progress=progress)
    print(f"made {made} variant(s), {skipped} already done, in {args.out}")
    return 0
