"""Generate synthetic CTs from label maps with a registered model, without a GUI.

Works the same with plain Python and inside Slicer::

    python SemanticSynthesisBatch.py --model spade-ct --labels labels.nii.gz --table structures.csv --samples 3 --out out/
    Slicer --no-main-window --python-script SemanticSynthesisBatch.py --model spade-ct --labels seg.seg.nrrd --out out/

Several label maps: --cases cases.csv with columns labels (and optionally table, name). Each case
and sample gets ``<out>/<name>/sample_NN/`` holding ct.nii.gz and ct.png, written atomically, so
running the same command again after an interruption makes only what is missing.

Progress goes to stdout as lines "PROGRESS <percent>% <message>". Exit codes: 0 done, 2 bad input,
3 the computation failed, 130 interrupted. ``--self-test`` runs a tiny case on the fetched LIDC scan.
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
    EXIT_FAILED,
    EXIT_OK,
    ArgumentError,
    ProgressPrinter,
    run_script,
)
from medsynth.jobs.batch_script import ScriptArgumentParser as _Parser  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="SemanticSynthesisBatch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="spade-ct", help="registered model id (medsynth generate --list)")
    parser.add_argument("--labels", help="label map (NIfTI/NRRD, or .seg.nrrd with segment names)")
    parser.add_argument("--table", help="label names (TotalSegmentator structures.csv or a colour table)")
    parser.add_argument("--cases", help="CSV with columns labels[, table, name]")
    parser.add_argument("--slices", default="all")
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--guidance", type=float)
    parser.add_argument("--unknown", default="error")
    parser.add_argument("--out", help="output folder")
    parser.add_argument("--self-test", action="store_true", help="run a tiny case on the fetched LIDC scan")
    return parser


def read_cases(args) -> list[dict]:
    if args.cases:
        with open(args.cases, newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows or "labels" not in rows[0]:
            raise ArgumentError(f"{args.cases} needs a 'labels' column.")
        return [{"labels": row["labels"], "table": row.get("table") or None,
                 "name": row.get("name") or Path(row["labels"]).name.split(".")[0]} for row in rows]
    if not args.labels:
        raise ArgumentError("give --labels or --cases")
    return [{"labels": args.labels, "table": args.table, "name": Path(args.labels).name.split(".")[0]}]


def run(args) -> int:
    from medsynth.generative.pictures import save_generated_picture
    from medsynth.io.label_files import read_labels
    from medsynth.generative.inference import generate
    from medsynth.io import write_volume
    from medsynth.jobs import BatchItem, run_batch

    if not args.out:
        raise ArgumentError("give --out")
    cases = read_cases(args)
    items = [BatchItem(f"{case['name']}/sample_{sample:02d}", (case, sample))
             for case in cases for sample in range(args.samples)]

    progress = ProgressPrinter()

    def work(item, folder):
        case, sample = item.payload
        labels = read_labels(case["labels"], case["table"])
        volume = generate(labels, args.model, slices=args.slices, samples=1, first_sample=sample, seed=args.seed, steps=args.steps,
                          guidance=args.guidance, unknown=args.unknown)[0]
        write_volume(volume, folder / "ct.nii.gz")
        save_generated_picture(volume, labels, folder / "ct.png")

    Path(args.out).mkdir(parents=True, exist_ok=True)
    for case in cases:
        (Path(args.out) / case["name"]).mkdir(parents=True, exist_ok=True)
    done, skipped = run_batch(items, args.out, work, progress)
    print(f"done: {done} new, {skipped} already there -> {args.out}")
    return EXIT_OK


def self_test() -> int:
    from medsynth.data import fetch

    folder = fetch("lidc")
    with tempfile.TemporaryDirectory() as out:
        args = build_parser().parse_args(["--labels", str(folder / "labels.nii.gz"), "--table",
                                          str(folder / "structures.csv"), "--slices", "60..61", "--out", out])
        code = run(args)
        made = list(Path(out).rglob("ct.nii.gz"))
        if code != 0 or len(made) != 1:
            print(f"self-test failed: exit {code}, outputs {made}")
            return EXIT_FAILED
    print("self-test passed")
    return EXIT_OK


def main(argv) -> int:
    return run_script("SemanticSynthesisBatch", build_parser(), argv,
                      lambda args: self_test() if args.self_test else run(args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
