"""``medsynth tumor CT --organ-mask M --out DIR``: synthetic tumors (liver, pancreas, kidney), K variants per CT.

Each variant folder holds ct.nii.gz, labels.nii.gz (0 background, 1 organ, 2 tumor),
tumors.json (one description with realism statistics per tumor) and tumors.png. An interrupted
run resumes: finished variants are skipped, the same seed gives the same variants.

Three more actions share the command's name:

- ``medsynth tumor realism DIR_OR_JSON...``: each tumor's statistics against the literature's ranges;
- ``medsynth tumor train-segmenter --out FILE``: the detector recipe (tumors synthesised on the fly);
- ``medsynth tumor detect CT --organ-mask M --out MASK``: the shipped detector on any CT.
"""

from __future__ import annotations

import argparse
import sys

from medsynth.jobs.progress_bar import progress_bar
from medsynth.tumor.parameters import LESION_CHOICES
from medsynth.tumor.spec import CONTRAST_PHASES, DENSITIES, KINDS, ORGANS, Appearance, TumorSpec

#: The lesion types of every organ (LESION_CHOICES less its "default", which the CLI spells by leaving --lesion out).
LESION_TYPES = LESION_CHOICES[1:]


class _TumorParser(argparse.ArgumentParser):
    """``medsynth tumor CT ...`` generates; ``medsynth tumor <action> ...`` hands over to that action's parser."""

    actions: dict[str, argparse.ArgumentParser] = {}

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        if args and args[0] in self.actions:
            return self.actions[args[0]].parse_known_args(args[1:], namespace)
        return super().parse_known_args(args, namespace)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tumor", help="paint synthetic liver, pancreas or kidney tumors into a CT; realism, train-segmenter, detect",
        description="medsynth tumor CT --organ-mask M --out DIR (generate), or medsynth tumor realism | "
                    "train-segmenter | detect ... (see medsynth tumor <action> --help)")
    parser.__class__ = _TumorParser
    parser.actions = {"realism": _realism_parser(), "train-segmenter": _train_parser(), "detect": _detect_parser()}
    parser.add_argument("ct", help="CT in HU: a DICOM folder, NIfTI or NRRD file (or an action: realism, "
                                   "train-segmenter, detect)")
    parser.add_argument("--organ-mask", "--liver-mask", dest="organ_mask", required=True,
                        help="organ mask or multi-label segmentation (TotalSegmentator) on the CT's grid")
    parser.add_argument("--organ", choices=ORGANS, default="liver", help="organ the tumors grow in (default: liver)")
    parser.add_argument("--organ-label", "--liver-label", dest="organ_label", default=None,
                        help="the organ's label value or name (default: its TotalSegmentator name from "
                             "--label-table, else 1 for a one-organ mask)")
    parser.add_argument("--label-table", default=None, help="CSV naming the labels (TotalSegmentator structures.csv)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--type", dest="kind", choices=KINDS, default="mix", help="tumor type (default: mix)")
    size.add_argument("--diameter-mm", type=float, default=None, help="free tumor size in mm instead of a type")
    parser.add_argument("--count", type=int, default=None, help="tumors per variant (default: the type's range)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same variants)")
    parser.add_argument("--variants", type=int, default=1, help="variants to make from this CT (default: 1)")
    parser.add_argument("--phase", dest="contrast_phase", choices=CONTRAST_PHASES, default="portal_venous",
                        help="the scan's contrast phase (default: portal_venous)")
    parser.add_argument("--lesion", choices=LESION_TYPES, default=None,
                        help="lesion type: liver lesion; pancreas adenocarcinoma; kidney rcc or cyst "
                             "(default: the organ's first)")
    parser.add_argument("--density", choices=DENSITIES, default="hypo",
                        help="liver: relative to the liver (default: hypo)")
    parser.add_argument("--contrast-hu", type=float, default=None, help="|tumor - parenchyma| in HU (default: drawn)")
    parser.add_argument("--capsule", action="store_true", help="add a brighter rim")
    parser.add_argument("--mass-effect", action="store_true", help="push the surrounding parenchyma outward")
    parser.add_argument("--necrosis", action="store_true", help="add a necrotic core to medium and large tumors")
    parser.add_argument("--keep-vessels", action="store_true", help="leave vessels visible through tumors")
    parser.add_argument("--duct-dilation", action="store_true", help="pancreas: dilated duct upstream of the tumor")
    parser.add_argument("--allow-overlap", action="store_true", help="let tumors overlap each other")
    parser.add_argument("--out", required=True, help="output folder (one sub-folder per variant)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def build_spec(args: argparse.Namespace) -> TumorSpec:
    appearance = Appearance(density=args.density, contrast_hu=args.contrast_hu, capsule=args.capsule,
                            mass_effect=args.mass_effect, necrosis=args.necrosis, keep_vessels=args.keep_vessels,
                            lesion=args.lesion, duct_dilation=args.duct_dilation)
    return TumorSpec(kind=args.kind, diameter_mm=args.diameter_mm, count=args.count, appearance=appearance,
                     allow_overlap=args.allow_overlap, organ=args.organ, contrast_phase=args.contrast_phase)


def _label(value: str | None) -> int | str | None:
    return int(value) if value is not None and str(value).lstrip("-").isdigit() else value


def run(args: argparse.Namespace) -> int:
    from medsynth.io import read_labelmap, read_volume
    from medsynth.tumor.variants import generate_variants

    spec = build_spec(args)
    spec.validate()  # fail on bad options before reading any file
    ct = read_volume(args.ct, modality="CT")
    organ = aligned_labels(read_labelmap(args.organ_mask, args.label_table), ct)
    with progress_bar("tumor variants", enabled=not args.quiet) as progress:
        made, skipped = generate_variants(ct, organ, spec, args.seed, args.variants, args.out,
                                          liver_label=_label(args.organ_label), progress=progress)
    print(f"made {made} variant(s), {skipped} already done, in {args.out}")
    return 0


# --- medsynth tumor realism ---------------------------------------------------------------------------
def _realism_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medsynth tumor realism",
        description="Each tumor's statistics (contrast, texture SD, edge gradient, sphericity, size) against the "
                    "literature's ranges for its organ, lesion and phase; prints a table and saves a plot.")
    parser.add_argument("inputs", nargs="+", help="tumors.json files, or folders searched for them (variant folders)")
    parser.add_argument("--plot", default=None, help="PNG to write (default: realism.png next to the first input)")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the checks as JSON")
    parser.set_defaults(func=run_realism)
    return parser


def run_realism(args: argparse.Namespace) -> int:
    from pathlib import Path

    from medsynth.tumor.realism_report import check_tumors, find_descriptions, format_table, plot_checks, write_json

    files = find_descriptions([Path(p) for p in args.inputs])
    checks = check_tumors(files)
    print(format_table(checks))
    first = Path(args.inputs[0])
    plot = Path(args.plot) if args.plot else (first if first.is_dir() else first.parent) / "realism.png"
    plot_checks(checks, plot)
    print(f"plot: {plot}")
    if args.json_out:
        write_json(checks, Path(args.json_out))
    return 0


# --- medsynth tumor train-segmenter -------------------------------------------------------------------
def _train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medsynth tumor train-segmenter",
        description="Train the tumor detector (MONAI 2D U-Net) on the fetchable healthy CTs with tumors synthesised "
                    "on the fly, evaluate it per tumor on held-out patients, write the weights and a JSON record.")
    parser.add_argument("--out", required=True, help="weights file to write (.pt; the record goes next to it as .json)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the shipped recipe's)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default: 1)")
    parser.add_argument("--seed", type=int, default=None, help="training seed (default: the recipe's)")
    parser.add_argument("--no-evaluation", action="store_true", help="skip the held-out evaluation")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_train)
    return parser


def run_train(args: argparse.Namespace) -> int:
    import json

    from medsynth.errors import InputError
    from medsynth.generative.device import set_threads
    from medsynth.tumor.detector import DetectorRecipe
    from medsynth.tumor.detector_training import train_and_record

    recipe = DetectorRecipe()
    if args.steps is not None:
        if args.steps < 1:
            raise InputError(f"--steps must be at least 1, not {args.steps}.")
        recipe.steps = args.steps
    if args.seed is not None:
        recipe.seed = args.seed
    set_threads(args.threads)
    command = "medsynth tumor train-segmenter " + " ".join(sys.argv[3:] if len(sys.argv) > 3 else [])
    with progress_bar("train tumor detector", enabled=not args.quiet) as progress:
        record = train_and_record(recipe, args.out, device=args.device, command=command.strip(), progress=progress,
                                  evaluate=not args.no_evaluation)
    summary = {key: record[key] for key in ("file", "sha256", "training_seconds", "final_loss", "heldout_metrics")}
    if summary["heldout_metrics"]:
        summary["heldout_metrics"] = {k: v for k, v in summary["heldout_metrics"].items() if k != "per_tumor"}
    print(json.dumps(summary, indent=2))
    return 0


# --- medsynth tumor detect ----------------------------------------------------------------------------
def aligned_labels(labels, ct):
    """The label map on the CT's grid: as it is, or with its axes permuted and flipped like the CT's.

    TotalSegmentator writes its NIfTI of a DICOM series in another axis order: the same voxels, which
    need no resampling. Anything else gets the one-line grid error naming the fix.
    """
    from medsynth.errors import GeometryMismatchError
    from medsynth.volume import LabelMap, reorient_like

    if not ct.same_grid(labels):
        try:
            turned = reorient_like(labels, ct)
            labels = LabelMap(turned.array, turned.ijk_to_ras, labels.metadata, labels.table)
        except GeometryMismatchError:
            pass
    ct.require_same_grid(labels, what="organ mask")
    return labels


def _detect_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medsynth tumor detect",
        description="Find tumors in an organ with the shipped detector (trained on synthetic tumors only) and write "
                    "the predicted tumor mask on the CT's grid.")
    parser.add_argument("ct", help="CT in HU: a DICOM folder, NIfTI or NRRD file")
    parser.add_argument("--organ-mask", required=True, help="organ mask or TotalSegmentator label map on the CT's grid")
    parser.add_argument("--organ", choices=ORGANS, default=None, help="organ (default: the detector's, liver)")
    parser.add_argument("--organ-label", default=None, help="the organ's label value or name (default: by name)")
    parser.add_argument("--label-table", default=None, help="CSV naming the labels (TotalSegmentator structures.csv)")
    parser.add_argument("--weights", default=None, help="a detector file (default: the shipped one)")
    parser.add_argument("--threshold", type=float, default=0.5, help="tumor probability threshold (default: 0.5)")
    parser.add_argument("--out", required=True, help="mask file to write (.nii.gz or .nrrd)")
    parser.set_defaults(func=run_detect)
    return parser


def run_detect(args: argparse.Namespace) -> int:
    import numpy as np
    from scipy import ndimage

    from medsynth.errors import InputError
    from medsynth.io import read_labelmap, read_volume, write_volume
    from medsynth.tumor.detector import load_detector, organ_mask_from
    from medsynth.volume import LabelMap, LabelTable

    if not 0.0 < args.threshold < 1.0:
        raise InputError(f"--threshold must be between 0 and 1, not {args.threshold}.")
    ct = read_volume(args.ct)
    ct.require_hu()  # an MR (or any non-CT) stops here with the fix named
    detector = load_detector(args.weights)
    organ = args.organ or detector.recipe.organ
    if organ != detector.recipe.organ:
        raise InputError(f"These weights detect {detector.recipe.organ} tumors, not {organ} tumors. "
                         f"Use --organ {detector.recipe.organ}, or weights trained for the {organ}.")
    labels = aligned_labels(read_labelmap(args.organ_mask, args.label_table), ct)
    mask = detector.detect(ct, organ_mask_from(labels, organ, _label(args.organ_label)), threshold=args.threshold)
    out = LabelMap(mask.astype(np.uint8), ct.ijk_to_ras.copy(), table=LabelTable({1: f"{organ} tumor"}))
    write_volume(out, args.out)
    pieces = ndimage.label(mask)[1]
    volume_ml = float(mask.sum() * np.prod(ct.spacing) / 1000.0)
    print(f"{pieces} tumor piece(s), {volume_ml:.1f} ml, written to {args.out}")
    return 0
