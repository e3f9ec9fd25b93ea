"""Generate synthetic liver tumor datasets from CTs and their liver masks, without a GUI.

Works the same with plain Python and inside Slicer::

    python TumorSynthesisBatch.py --ct ct.nii.gz --liver-mask labels.nii.gz --liver-label 5 --variants 100 --out data/
    Slicer --no-main-window --python-script TumorSynthesisBatch.py --ct ct.nii.gz --liver-mask liver.nii.gz --out data/

Several CTs: --cases cases.csv with columns ct, liver_mask (and optionally liver_label, name);
each case gets <out>/<name>/variant_NNN/ folders. Every variant folder holds ct.nii.gz,
labels.nii.gz (0 background, 1 liver, 2 tumor), tumors.json and tumors.png and appears
atomically, so running the same command again after an interruption makes only what is missing.

Progress goes to stdout as lines "PROGRESS <percent>% <message>". Exit codes: 0 done, 2 bad input
(arguments, files, CT, mask), 3 the computation failed, 130 interrupted.
"""

import argparse
import csv
import sys
import tempfile
from pathlib import Path


def _import_medsynth():
    """medsynth from Slicer's module path, the installed package, or this source tree."""
    try:
        import medsynth  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "MedSynth"))
        import medsynth  # noqa: F401


_import_medsynth()
from medsynth.jobs.batch_script import (  # noqa: E402
    EXIT_OK,
    ArgumentError,
    ProgressPrinter,
    run_script,
)
from medsynth.jobs.batch_script import ScriptArgumentParser as _Parser  # noqa: E402


TYPES = ["tiny", "small", "medium", "large", "mix"]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="TumorSynthesisBatch", description=__doc__.split("\n\n")[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ct", help="CT in HU: a DICOM folder, NIfTI, NRRD or MHA file")
    parser.add_argument("--liver-mask", help="liver mask or multi-label segmentation on the CT's grid")
    parser.add_argument("--liver-label", help="the liver's label value or name (default: 'liver' from the table, else 1)")
    parser.add_argument("--label-table", help="CSV naming the labels (TotalSegmentator structures.csv)")
    parser.add_argument("--cases", help="CSV of cases: columns ct, liver_mask[, liver_label, name]")
    parser.add_argument("--type", dest="kind", default="mix", choices=TYPES, help="tumor type (default: mix)")
    parser.add_argument("--diameter-mm", type=float, help="free tumor size in mm instead of a type")
    parser.add_argument("--count", type=int, help="tumors per variant (default: the type's published range)")
    parser.add_argument("--organ", default="liver", choices=["liver", "pancreas", "kidney"],
                        help="organ the tumors grow in (default: liver); the mask columns hold that organ")
    parser.add_argument("--phase", dest="contrast_phase", default="portal_venous",
                        choices=["portal_venous", "arterial", "non_contrast"], help="the scans' contrast phase")
    parser.add_argument("--lesion", default=None, help="lesion type: rcc or cyst (kidney), adenocarcinoma (pancreas)")
    parser.add_argument("--duct-dilation", action="store_true", help="pancreas: dilated duct upstream of the tumor")
    parser.add_argument("--density", default="hypo", choices=["hypo", "iso", "hyper"])
    parser.add_argument("--capsule", action="store_true")
    parser.add_argument("--mass-effect", action="store_true")
    parser.add_argument("--necrosis", action="store_true")
    parser.add_argument("--keep-vessels", action="store_true")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same variants)")
    parser.add_argument("--variants", type=int, default=1, help="variants per CT (default 1)")
    parser.add_argument("--out", help="output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--self-test", action="store_true",
                        help="make two variants of an analytic phantom into a temporary folder and check them")
    return parser



def read_cases(args) -> list:
    """(name, ct path, mask path, liver label) for each case."""
    if args.cases:
        path = Path(args.cases)
        if not path.exists():
            raise ArgumentError(f"{path} does not exist")
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows or "ct" not in rows[0] or "liver_mask" not in rows[0]:
            raise ArgumentError(f"{path.name} needs the columns ct and liver_mask")
        base = path.parent
        return [(row.get("name") or f"case_{index:03d}", base / row["ct"], base / row["liver_mask"],
                 row.get("liver_label") or args.liver_label) for index, row in enumerate(rows)]
    if not (args.ct and args.liver_mask):
        raise ArgumentError("give --ct and --liver-mask, or --cases")
    return [(None, Path(args.ct), Path(args.liver_mask), args.liver_label)]


def build_spec(args):
    from medsynth.tumor import Appearance, TumorSpec

    appearance = Appearance(density=args.density, capsule=args.capsule, mass_effect=args.mass_effect,
                            necrosis=args.necrosis, keep_vessels=args.keep_vessels, lesion=args.lesion,
                            duct_dilation=args.duct_dilation)
    spec = TumorSpec(kind=args.kind, diameter_mm=args.diameter_mm, count=args.count, appearance=appearance,
                     organ=args.organ, contrast_phase=args.contrast_phase)
    spec.validate()
    return spec


def _label(value):
    if value is None or value == "":
        return None
    return int(value) if str(value).lstrip("-").isdigit() else str(value)


def run(args, progress) -> int:
    from medsynth.io import read_labelmap, read_volume
    from medsynth.jobs import sub_progress
    from medsynth.tumor.variants import generate_variants

    if not args.out:
        raise ArgumentError("--out is required")
    spec = build_spec(args)
    cases = read_cases(args)
    for index, (name, ct_path, mask_path, label) in enumerate(cases):
        ct = read_volume(ct_path, modality="CT")
        liver = read_labelmap(mask_path, args.label_table)
        out = Path(args.out) / name if name else Path(args.out)
        made, skipped = generate_variants(ct, liver, spec, args.seed + index, args.variants, out,
                                          liver_label=_label(label),
                                          progress=sub_progress(progress, index / len(cases), (index + 1) / len(cases)))
        if not args.quiet:
            print(f"{name or ct_path.name}: made {made} variant(s), {skipped} already done, in {out}", flush=True)
    return EXIT_OK


def self_test(progress) -> int:
    """Two variants of an analytic phantom (60 HU liver ellipsoid in a 40 HU body), then a resume."""
    import json

    import numpy as np

    from medsynth.io import write_volume
    from medsynth.volume import LabelMap, LabelTable, Volume, VolumeMetadata

    k, j, i = np.mgrid[0:50, 0:140, 0:140]
    body = (i - 70) ** 2 + (j - 70) ** 2 < 66 ** 2
    liver = ((i - 70) / 50.0) ** 2 + ((j - 70) / 42.0) ** 2 + ((k - 25) / 22.0) ** 2 < 1
    array = np.where(liver, 60.0, np.where(body, 40.0, -1000.0)) + np.random.default_rng(0).normal(0, 10, body.shape)
    ct = Volume.from_spacing(array.astype(np.int16), (1.0, 1.0, 2.5), metadata=VolumeMetadata(modality="CT", units="HU"))
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        write_volume(ct, folder / "ct.nii.gz")
        write_volume(LabelMap(liver.astype(np.uint8), ct.ijk_to_ras, table=LabelTable({1: "liver"})),
                     folder / "liver.nii.gz")
        argv = ["--ct", str(folder / "ct.nii.gz"), "--liver-mask", str(folder / "liver.nii.gz"), "--liver-label", "1",
                "--type", "small", "--count", "3", "--variants", "2", "--out", str(folder / "out"), "--quiet"]
        args = build_parser().parse_args(argv)
        run(args, progress)
        for variant in ("variant_000", "variant_001"):
            tumors = json.loads((folder / "out" / variant / "tumors.json").read_text())["tumors"]
            assert len(tumors) == 3 and all(t["realism"]["components"] == 1 for t in tumors), variant
            assert (folder / "out" / variant / "tumors.png").exists()
        run(args, progress)  # resumes: nothing left to do
    print("TumorSynthesisBatch self-test passed", flush=True)
    return EXIT_OK


def main(argv) -> int:
    def work(args) -> int:
        progress = ProgressPrinter(args.quiet)
        return self_test(progress) if args.self_test else run(args, progress)

    return run_script("TumorSynthesisBatch", build_parser(), argv, work,
                      "finished variants are kept, run the same command to resume")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
